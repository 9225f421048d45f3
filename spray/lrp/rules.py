"""LRP rules (thesis Table 2.1, L636-L694; SPEC §3.2) as modified-gradient layer forwards.

Each rule's :meth:`Rule.apply` returns a tensor whose *value* is the layer output
z_j = sum_i x_i w_ij + b_j and whose *backward* maps output relevance R_j to input
relevance R_i = sum_j (z'_ij / z'_j) R_j with the rule's contributions z'_ij. The bias is
treated as a neuron (Eq. 2.31, L722): it takes part in z'_j and absorbs its share.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from spray.errors import SprayError
from spray.lrp.gradient import divide_gradient, nonzero, scale_gradient
from spray.lrp.layers import LinearLayer


class Rule:
    """A decomposition rule for an affine layer (dense or convolution)."""

    def apply(self, x: torch.Tensor, layer: LinearLayer) -> torch.Tensor:
        raise NotImplementedError


def _input_weighted(x: torch.Tensor) -> torch.Tensor:
    """``x`` whose backward multiplies relevance-per-unit by x_i, giving z_ij = x_i w_ij."""
    return scale_gradient(x, x)


@dataclass(frozen=True)
class Epsilon(Rule):
    """epsilon-rule, Eq. 2.22 (L654-L656): R_i = sum_j z_ij / (z_j + eps sign(z_j)) R_j.

    sign(0) := 1, as the thesis requires. ``Epsilon(0)`` is the basic rule LRP-0
    (Eq. 2.10, L530), with 0/0 read as 0.
    """

    epsilon: float = 0.01

    def __post_init__(self) -> None:
        if self.epsilon < 0:
            raise SprayError(f"Epsilon(epsilon={self.epsilon}) is negative; pass epsilon >= 0.")

    def apply(self, x: torch.Tensor, layer: LinearLayer) -> torch.Tensor:
        return divide_gradient(layer.output(_input_weighted(x)), self.epsilon)


@dataclass(frozen=True)
class Basic(Epsilon):
    """The basic rule LRP-0 (Eq. 2.10, L530); equals gradient x input in ReLU nets (L899)."""

    epsilon: float = 0.0


@dataclass(frozen=True)
class AlphaBeta(Rule):
    """alpha-beta-rule, Eq. 2.26 (L674), in the thesis convention alpha + beta = 1, alpha >= 1.

    R_i = sum_j (alpha z+_ij / z+_j + beta z-_ij / z-_j) R_j, where the positive and negative
    parts include the bias (L668) and z-_j = 0 is stabilised to contribute nothing.
    The thesis default alpha=2, beta=-1 is what later papers (which write alpha - beta = 1)
    call alpha2-beta1: literature beta=1 is thesis beta=-1.

    Cost: with non-negative inputs (after a ReLU) z+ and z- need one conv each with
    clamped weights, so about twice a gradient pass; signed inputs need four.
    """

    alpha: float = 2.0
    beta: float = -1.0

    def __post_init__(self) -> None:
        if abs(self.alpha + self.beta - 1.0) > 1e-12 or self.alpha < 1:
            raise SprayError(
                f"AlphaBeta(alpha={self.alpha}, beta={self.beta}) breaks the thesis constraint "
                "alpha + beta = 1, alpha >= 1 (Eq. 2.26); for literature alpha2-beta1 pass "
                "alpha=2, beta=-1."
            )

    def apply(self, x: torch.Tensor, layer: LinearLayer) -> torch.Tensor:
        weight, bias = layer.weight, layer.bias
        w_pos, w_neg = weight.clamp(min=0), weight.clamp(max=0)
        b_pos = None if bias is None else bias.clamp(min=0)
        b_neg = None if bias is None else bias.clamp(max=0)
        weighted = _input_weighted(x)
        if bool((x >= 0).all()):
            positive = layer.forward(weighted, w_pos, b_pos)
            negative_input = weighted if self.beta else x.detach()
            negative = layer.forward(negative_input, w_neg, b_neg)
        else:
            x_pos, x_neg = weighted.clamp(min=0), weighted.clamp(max=0)
            positive = layer.forward(x_pos, w_pos, b_pos) + layer.forward(x_neg, w_neg, None)
            if not self.beta:
                x_pos, x_neg = x_pos.detach(), x_neg.detach()
            negative = layer.forward(x_pos, w_neg, b_neg) + layer.forward(x_neg, w_pos, None)
        out = divide_gradient(positive, factor=self.alpha)
        if self.beta:
            return out + divide_gradient(negative, factor=self.beta)
        return out + negative


@dataclass(frozen=True)
class ZPlus(AlphaBeta):
    """z+-rule: alpha=1, beta=0 (L676), the same as Excitation Backprop (L1383)."""

    alpha: float = 1.0
    beta: float = 0.0


class _InputFree(Rule):
    """Rules whose contributions z_ij ignore the input value: R_i = sum_j z_ij / z_j R_j.

    z_j sums z_ij over the inputs that exist (zero padding is not an input).
    """

    def contributions(self, weight: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def apply(self, x: torch.Tensor, layer: LinearLayer) -> torch.Tensor:
        weight = self.contributions(layer.weight)
        spread = layer.forward(x, weight, None)
        totals = layer.forward(torch.ones_like(x[:1]), weight, None)
        relevance_path = scale_gradient(spread, 1.0 / nonzero(totals)) - spread.detach()
        return layer.output(x.detach()) + relevance_path


@dataclass(frozen=True)
class Flat(_InputFree):
    """flat-rule, Eq. 2.27 (L684): R_j is spread uniformly over its receptive field.

    Used on the input layer it makes maps invariant to input normalisation (L686, L1027).
    """

    def contributions(self, weight: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(weight)


@dataclass(frozen=True)
class WSquare(_InputFree):
    """w^2-rule, Eq. 2.28 (L692): R_i = sum_j w_ij^2 / sum_i' w_i'j^2 R_j."""

    def contributions(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * weight


def proportional(function, *inputs, epsilon: float = 0.0):
    """Apply a linear ``function`` with the z-rule: R_i = x_i dz/dx_i R / z.

    Used for sum/average pooling (L730), residual additions (Eq. 2.39, L772), a BatchNorm
    that follows no convolution (Eq. 2.54, L844) and LayerNorm (with ``epsilon``, the
    epsilon-rule of Eq. 2.22). Constant inputs and constants inside ``function`` (a bias)
    keep no share: they absorb theirs.
    """
    weighted = [_input_weighted(t) if isinstance(t, torch.Tensor) and t.requires_grad else t for t in inputs]
    return divide_gradient(function(*weighted), epsilon)
