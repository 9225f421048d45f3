"""Element-wise products: scaling by a constant, and multiplicative gates.

- **Scaling** ``c * x`` or ``x / c`` where c does not depend on the input (a number, or a
  parameter such as ConvNeXt's ``layer_scale``): every output has exactly one input, so the
  z-rule of y_j = c_j x_j gives each value its output's relevance unchanged.
- **Gating** ``x * gate(x)`` (squeeze-and-excitation in EfficientNet, MobileNetV3,
  RegNetY; a hand-written SiLU ``x * sigmoid(x)``): the gate is held constant and the
  feature branch receives all the relevance; the gate branch receives none. This is the
  "signal-take-all" rule of Arras et al. 2017 ("Explaining Recurrent Neural Network
  Predictions in Sentiment Analysis", WASSA, Sec. 3) for multiplicative gates, which Ali et
  al. 2022 (ICML, Sec. 3.1, the AH-rule) apply to attention weights. The gate is the operand
  a sigmoid-like op (sigmoid, hard sigmoid, softmax) produced, seen through shape ops;
  failing that, the operand that is broadcast (fewer elements). A product of two
  input-dependent tensors with no identifiable gate has no rule here.
"""

from __future__ import annotations

import operator

import torch

from spray.errors import UnsupportedLayerError
from spray.lrp.gradient import pass_through


def depends_on_input(value: object) -> bool:
    """A tensor the relevance flows through (the explained input's autograd graph)."""
    return isinstance(value, torch.Tensor) and value.requires_grad


def scale(op, a, b) -> torch.Tensor:
    """``op(a, b)`` with exactly one input-dependent operand, which keeps the relevance."""
    if depends_on_input(a):
        return pass_through(a, lambda t: op(t, b))
    return pass_through(b, lambda t: op(a, t))


def gate(a: torch.Tensor, b: torch.Tensor, a_is_gate: bool) -> torch.Tensor:
    """``a * b`` with the gate held constant; the other operand takes all the relevance."""
    if a_is_gate:
        held = a.detach()
        return pass_through(b, lambda t: operator.mul(held, t))
    held = b.detach()
    return pass_through(a, lambda t: operator.mul(t, held))


def choose_gate(a: torch.Tensor, b: torch.Tensor, a_gate_like: bool, b_gate_like: bool) -> bool | None:
    """True if ``a`` is the gate, False if ``b`` is, None if neither can be told apart.

    A sigmoid-like origin decides; otherwise the broadcast operand (fewer elements) is the gate.
    """
    if a_gate_like != b_gate_like:
        return a_gate_like
    if a.numel() != b.numel():
        return a.numel() < b.numel()
    return None


class _GateOnly(torch.autograd.Function):
    """Forward ``function(value)``; relevance arriving here is an error naming the op."""

    @staticmethod
    def forward(ctx, value: torch.Tensor, function, where: str) -> torch.Tensor:
        ctx.where = where
        return function(value)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        raise UnsupportedLayerError(ctx.where, "softmax on the relevance path (it is supported as a gate)")


def gate_only(value: torch.Tensor, function, where: str) -> torch.Tensor:
    """A softmax: not element-wise, so it has no rule of its own, but it is a gate.

    As a gate its output is held constant and no relevance reaches it; any relevance that
    does arrive raises :class:`~spray.errors.UnsupportedLayerError` naming ``where``.
    """
    return _GateOnly.apply(value, function, where)
