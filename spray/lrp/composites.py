"""Composites: which rule explains which layer (SPEC §3.4).

A composite is a value: a rule for convolutions, one for dense layers and optionally one for
the input layer (the first conv/dense layer the input reaches). Build your own with
``Composite(conv=AlphaBeta(), dense=Epsilon(1.0), first=WSquare())`` or
``Composite.uniform(Epsilon(0.1))``.
"""

from __future__ import annotations

from dataclasses import dataclass

from spray.errors import SprayError
from spray.lrp.rules import AlphaBeta, Epsilon, Flat, Rule, ZPlus


@dataclass(frozen=True)
class Composite:
    """Rules per layer kind; ``first`` (if set) overrides both for the input layer."""

    conv: Rule
    dense: Rule
    first: Rule | None = None

    @classmethod
    def uniform(cls, rule: Rule) -> Composite:
        """The same rule on every layer, the input layer included."""
        return cls(conv=rule, dense=rule)

    def rule_for(self, kind: str, is_first: bool) -> Rule:
        """The rule for a layer of ``kind`` ("conv" or "dense")."""
        if is_first and self.first is not None:
            return self.first
        return self.conv if kind == "conv" else self.dense

    def layer_norm_epsilon(self) -> float:
        """The stabiliser of the LayerNorm rule (:mod:`spray.lrp.normalisation`).

        LayerNorm with its std held constant is a dense linear map, explained with the
        epsilon-rule as Ali et al. 2022 do; it takes the dense rule's epsilon when that is an
        epsilon-rule (0.01 in the thesis composite, L2106), else 0 (their z-rule).
        """
        return self.dense.epsilon if isinstance(self.dense, Epsilon) else 0.0


THESIS = Composite(conv=AlphaBeta(2.0, -1.0), dense=Epsilon(0.01), first=Flat())
"""Chapters 5-6 (footnote L2106, L1900-L1913): alpha2-beta1 on conv, eps=0.01 dense, flat first."""

EPSILON_PLUS_FLAT = Composite(conv=ZPlus(), dense=Epsilon(0.01), first=Flat())
"""z+ on conv layers (L676), eps=0.01 on dense layers, flat on the input layer."""

EPSILON = Composite.uniform(Epsilon(0.01))
"""eps=0.01 everywhere (Chapter 3 uses eps=0.01 among others, L1349)."""

NAMED: dict[str, Composite] = {
    "thesis": THESIS,
    "epsilon_plus_flat": EPSILON_PLUS_FLAT,
    "epsilon": EPSILON,
}


def resolve(composite: str | Composite | Rule) -> Composite:
    """A composite from its name, itself, or a single rule used everywhere."""
    if isinstance(composite, Composite):
        return composite
    if isinstance(composite, Rule):
        return Composite.uniform(composite)
    if isinstance(composite, str) and composite in NAMED:
        return NAMED[composite]
    raise SprayError(f"unknown LRP composite {composite!r}; use one of {sorted(NAMED)}, a Composite or a Rule.")
