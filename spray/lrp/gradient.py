"""Two autograd primitives that turn a gradient pass into an LRP pass.

The engine uses the *relevance convention*: the "gradient" autograd sends backwards through
the explanation graph is the relevance itself (thesis Eq. 2.58-2.61, L870-L915). Every rule
is then built from ordinary differentiable ops plus these two nodes, whose forward is the
identity (the explained model's values never change) and whose backward rescales.
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


def pass_through(value: torch.Tensor, function) -> torch.Tensor:
    """Return ``function(value)`` while relevance flows back through it unchanged."""
    return _PassThrough.apply(value, function)


def nonzero(denominator: torch.Tensor) -> torch.Tensor:
    """Replace exact zeros by one, so that 0/0 contributions become 0 instead of NaN.

    A zero denominator only occurs where every contribution z_ij is zero too, so this
    changes no finite result; it is the stabiliser SPEC §3.2 asks for on z- = 0.
    """
    return torch.where(denominator == 0, torch.ones_like(denominator), denominator)
