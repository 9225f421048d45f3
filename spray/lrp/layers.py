"""Functional views of the parametric layers, so rules never touch the user's modules.

A :class:`LinearLayer` holds *detached* views of a module's weight and bias and the
functional op that applies them. Rules call ``layer.forward(input, weight, bias)`` with
modified weights (clamped, squared, ones); the module itself is never called, mutated or
hooked, which keeps explanations safe while other threads run the same model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class LinearLayer:
    """An affine layer ``forward(x, weight, bias)``; ``kind`` is "conv" or "dense"."""

    kind: str
    forward: Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]
    weight: torch.Tensor
    bias: torch.Tensor | None

    def output(self, x: torch.Tensor) -> torch.Tensor:
        """The layer's true output z = Wx + b."""
        return self.forward(x, self.weight, self.bias)

    def folded_with(self, norm: nn.BatchNorm2d) -> LinearLayer:
        """This conv followed by ``norm`` (eval statistics) as one conv with new tensors.

        W' = W s and b' = (b - mu) s + beta with s = gamma / sqrt(var + eps), so that the
        rule sees the pair as the single affine map it is at inference time.
        """
        mean, var = norm.running_mean, norm.running_var
        assert mean is not None and var is not None, "the caller checks require_running_stats first"
        scale = torch.rsqrt(var.detach() + norm.eps)
        shift = -mean.detach() * scale
        if norm.affine:
            scale = scale * norm.weight.detach()
            shift = shift * norm.weight.detach() + norm.bias.detach()
        weight = self.weight * scale.reshape(-1, *([1] * (self.weight.dim() - 1)))
        bias = shift if self.bias is None else self.bias * scale + shift
        return LinearLayer(self.kind, self.forward, weight, bias)


def _padded_conv(conv: nn.Conv2d, x, weight, bias):
    """Conv2d with a non-zero padding mode, written as pad-then-conv like the module does."""
    x = F.pad(x, conv._reversed_padding_repeated_twice, mode=conv.padding_mode)
    return F.conv2d(x, weight, bias, conv.stride, 0, conv.dilation, conv.groups)


def linear_layer(module: nn.Module) -> LinearLayer:
    """The functional view of a Conv2d or Linear module (its tensors detached, not copied)."""
    if not isinstance(module, PARAMETRIC):
        raise TypeError(f"linear_layer takes a Conv2d or Linear module, not {type(module).__name__}")
    bias = None if module.bias is None else module.bias.detach()
    if isinstance(module, nn.Linear):
        return LinearLayer("dense", F.linear, module.weight.detach(), bias)
    forward: Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]
    if module.padding_mode == "zeros":
        forward = partial(
            _zero_padded_conv,
            stride=module.stride,
            padding=module.padding,
            dilation=module.dilation,
            groups=module.groups,
        )
    else:
        forward = partial(_padded_conv, module)
    return LinearLayer("conv", forward, module.weight.detach(), bias)


def _zero_padded_conv(x, weight, bias, *, stride, padding, dilation, groups):
    return F.conv2d(x, weight, bias, stride, padding, dilation, groups)


PARAMETRIC = (nn.Conv2d, nn.Linear)
