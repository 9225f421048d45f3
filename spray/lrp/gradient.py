"""The autograd primitives that turn a gradient pass into an LRP pass.

The engine uses the *relevance convention*: the "gradient" autograd sends backwards through
the explanation graph is the relevance itself (thesis Eq. 2.58-2.61, L870-L915), so the
gradient arriving at any value is that value's relevance. Every rule is then built from
ordinary differentiable ops plus these nodes: two whose forward is the identity (the
explained model's values never change) and whose backward rescales, and one that hands
relevance through an element-wise op unchanged. Max pooling (:mod:`spray.lrp.pooling`) and
softmax gates (:mod:`spray.lrp.products`) add their own.
"""

from __future__ import annotations

import torch


class _ScaleGradient(torch.autograd.Function):
    """Identity forward; backward multiplies the incoming gradient by a fixed tensor."""

    @staticmethod
    def forward(ctx, value: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(scale)
        return value.view_as(value)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (scale,) = ctx.saved_tensors
        return grad * scale, None


class _DivideGradient(torch.autograd.Function):
    """Identity forward; backward divides the incoming gradient by the stabilised value.

    The divisor is computed in the backward from the saved value, so that a rule costs no
    extra forward passes over the layer output (issue 2, "Speed").
    """

    @staticmethod
    def forward(ctx, value: torch.Tensor, epsilon: float, factor: float) -> torch.Tensor:
        ctx.save_for_backward(value)
        ctx.epsilon, ctx.factor = epsilon, factor
        return value.view_as(value)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (value,) = ctx.saved_tensors
        if ctx.epsilon > 0:
            # value + eps sign(value) with sign(0) = 1. copysign gives -eps for -0.0, which is
            # harmless: a sum is -0.0 only when all its contributions z_ij are zero.
            divisor = torch.copysign(value.new_tensor(ctx.epsilon), value).add_(value)
        else:
            divisor = nonzero(value)
        result = grad / divisor
        return (result if ctx.factor == 1 else result.mul_(ctx.factor)), None, None


class _PassThrough(torch.autograd.Function):
    """Forward ``function(value)``; backward hands the gradient on unchanged (Eq. 2.37, L756)."""

    @staticmethod
    def forward(ctx, value: torch.Tensor, function) -> torch.Tensor:
        return function(value)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad, None


def scale_gradient(value: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Return ``value`` unchanged; on the way back, multiply the relevance by ``scale``."""
    return _ScaleGradient.apply(value, scale.detach())


def divide_gradient(value: torch.Tensor, epsilon: float = 0.0, factor: float = 1.0) -> torch.Tensor:
    """Return ``value`` unchanged; on the way back, map relevance R to factor * R / z.

    z is ``value + epsilon * sign(value)`` (sign(0) = 1, Eq. 2.22) or, for epsilon = 0,
    ``value`` with exact zeros read as one (0/0 := 0).
    """
    return _DivideGradient.apply(value, float(epsilon), float(factor))


def pass_through(value: torch.Tensor, function) -> torch.Tensor:
    """Return ``function(value)`` while relevance flows back through it unchanged."""
    return _PassThrough.apply(value, function)


def nonzero(denominator: torch.Tensor) -> torch.Tensor:
    """Replace exact zeros by one, so that 0/0 contributions become 0 instead of NaN.

    A zero denominator only occurs where every contribution z_ij is zero too, so this
    changes no finite result; it is the stabiliser SPEC §3.2 asks for on z- = 0.
    """
    return torch.where(denominator == 0, torch.ones_like(denominator), denominator)
