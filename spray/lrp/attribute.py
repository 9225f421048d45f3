"""The engine's entry points: relevance maps as one modified gradient pass (thesis L870-L915).

- :func:`attribute`: the relevance of the input for a target logit;
- :func:`attribute_layers`: the same, plus the relevance arriving at named module outputs,
  read in the same backward pass (:mod:`spray.lrp.inner`);
- :func:`conditional_relevance`: the input relevance of only the relevance that flows
  through chosen channels of a layer (Concept Relevance Propagation, Achtibat et al. 2023,
  "From attribution maps to human-understandable explanations through Concept Relevance
  Propagation", Nature Machine Intelligence 5, Eq. 6: the relevance at the layer's output
  masked to the concept's channels, then propagated on).

The model's graph (:mod:`spray.lrp.graph`) is re-run as an explanation graph
(:mod:`spray.lrp.explanation`); autograd's backward of it, seeded with the target logit, is
the relevance. In that relevance convention the gradient arriving at any module's output is
its relevance, so reading a layer costs one more autograd output and conditioning one
multiplication. The user's modules are only read, never changed or hooked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import NamedTuple

import torch
from torch import nn

from spray.errors import SprayError
from spray.lrp.composites import Composite, resolve
from spray.lrp.explanation import Explanation
from spray.lrp.graph import model_graph
from spray.lrp.inner import Channels, channel_mask, layer_node
from spray.lrp.rules import Rule


class LayerAttribution(NamedTuple):
    """Input relevance, logits, the relevance at each named layer's output, and that output
    itself (the layer's activations in the same forward pass), all detached."""

    relevance: torch.Tensor
    logits: torch.Tensor
    layers: dict[str, torch.Tensor]
    # read-only empty default: one shared dict would be mutable through every instance built without it
    activations: Mapping[str, torch.Tensor] = MappingProxyType({})


def attribute(
    model: nn.Module,
    x: torch.Tensor,
    target: int | torch.Tensor,
    composite: str | Composite | Rule = "thesis",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Relevance of each input value for the ``target`` logit, and the logits.

    ``x`` is a batch (B, ...); ``target`` a class index or a (B,) tensor of them. Relevance
    starts as one-hot times the target logit (L544) and is propagated with ``composite``:
    a name ("thesis", the default of SPEC §3.4 / L2106; "epsilon_plus_flat"; "epsilon"), a
    :class:`~spray.lrp.composites.Composite`, or one :class:`~spray.lrp.rules.Rule` for every
    layer. Returns ``(relevance, logits)`` with relevance shaped like ``x``, both detached,
    on ``x``'s device.

    The model is explained in inference semantics (BatchNorm running statistics, no dropout);
    it is never modified or hooked. A final Softmax/Sigmoid is skipped with a warning and the
    logits are explained (L848-L868).
    """
    result = _explain(model, x, target, composite)
    return result.relevance, result.logits


def attribute_layers(
    model: nn.Module,
    x: torch.Tensor,
    target: int | torch.Tensor,
    layers: Sequence[str],
    composite: str | Composite | Rule = "thesis",
) -> LayerAttribution:
    """:func:`attribute` plus the relevance arriving at each named module's output.

    ``layers`` are module paths (``features.28``; see
    :func:`~spray.lrp.inner.explainable_layers`); each recorded tensor has that module's
    output shape. Between a layer and the input, relevance is conserved up to what biases
    absorb (exactly for bias-free nets and vanishing stabilisers, Eq. 2.5, L495).
    """
    return _explain(model, x, target, composite, read=tuple(layers))


def conditional_relevance(
    model: nn.Module,
    x: torch.Tensor,
    target: int | torch.Tensor,
    layer: str,
    channels: Channels,
    composite: str | Composite | Rule = "thesis",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Input relevance of only the relevance flowing through ``channels`` of ``layer``.

    ``channels`` indexes dim 1 of the layer's output (conv feature maps, dense units), the
    same for every sample, or is a (B, channels) tensor of per-sample weights. Conditioning
    is linear: all channels give :func:`attribute`'s map, and channel sets that partition
    the layer's channels give maps summing to it. Returns ``(relevance, logits)``.
    """
    result = _explain(model, x, target, composite, condition=(layer, channels))
    return result.relevance, result.logits


def _explain(
    model: nn.Module,
    x: torch.Tensor,
    target: int | torch.Tensor,
    composite: str | Composite | Rule,
    read: tuple[str, ...] = (),
    condition: tuple[str, Channels] | None = None,
) -> LayerAttribution:
    composite = resolve(composite)
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        raise SprayError("x must be a batched tensor (B, ...); add a batch dimension with x[None].")
    graph = model_graph(model)
    explanation = Explanation(model, graph, composite)
    nodes = {name: layer_node(model, graph, explanation, name) for name in read}
    if condition is not None:
        name, channels = condition
        explanation.masks[layer_node(model, graph, explanation, name)] = channel_mask(channels, name)
    with torch.enable_grad():
        x_in = x.detach().requires_grad_(True)
        logits = explanation.run(x_in)
        start = _initial_relevance(logits, target)
        outputs: dict[torch.fx.Node, torch.Tensor] = {}
        for name, node in nodes.items():
            value = explanation.values[node]
            if not isinstance(value, torch.Tensor):
                raise SprayError(
                    f"layer {name!r} outputs a {type(value).__name__}, not a tensor; "
                    "name a module that returns one tensor."
                )
            outputs[node] = value
        # A layer in a branch held constant (a gate) is outside the relevance flow: zero.
        flowing = [node for node, value in outputs.items() if value.requires_grad]
        relevance, *at_layers = torch.autograd.grad(
            logits,
            [x_in, *(outputs[node] for node in flowing)],
            grad_outputs=start,
            allow_unused=True,
            materialize_grads=True,
        )
    found = dict(zip(flowing, at_layers, strict=True))
    layers = {
        name: found[node].detach() if node in found else torch.zeros_like(outputs[node]) for name, node in nodes.items()
    }
    activations = {name: outputs[node].detach() for name, node in nodes.items()}
    return LayerAttribution(relevance.detach(), logits.detach(), layers, activations)


def _initial_relevance(logits: torch.Tensor, target: int | torch.Tensor) -> torch.Tensor:
    """One-hot of the target times its logit (L544)."""
    if logits.dim() != 2:
        raise SprayError(
            f"the model returns shape {tuple(logits.shape)}, not (batch, classes); "
            "explain a classifier whose output is one logit per class."
        )
    batch, classes = logits.shape
    index = torch.as_tensor(target, device=logits.device).long().reshape(-1)
    if index.numel() == 1:
        index = index.expand(batch)
    if index.numel() != batch or bool(((index < 0) | (index >= classes)).any()):
        raise SprayError(
            f"target {target!r} does not name one of {classes} classes per sample; pass an "
            f"int in [0, {classes}) or a tensor of {batch} of them."
        )
    index = index[:, None]
    return torch.zeros_like(logits).scatter(1, index, logits.gather(1, index))
