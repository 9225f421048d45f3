"""Normalisation layers explained as the affine maps they are once their statistics are fixed.

- **BatchNorm2d** (thesis Eq. 2.54, L844): at inference a per-channel affine map with the
  running statistics. After a conv it is folded into it
  (:meth:`spray.lrp.layers.LinearLayer.folded_with`); elsewhere the z-rule explains it,
  R_x = x s / y R_y, and the shift absorbs the rest.
- **LayerNorm** (the LN-rule of Ali et al. 2022, "XAI for Transformers: Better Explanations
  through Conservative Propagation", ICML, Sec. 3.2): the standard deviation is held
  constant, which makes y = (x - mean(x)) / std * w + b a linear map of x with
  z_ik = x_i (delta_ik - 1/N) w_k / std. It is explained with the epsilon-rule of that map
  (Eq. 2.22), R_i = sum_k z_ik / (y_k + eps sign(y_k)) R_k, the bias absorbing its share.
  Differentiating through the std, as a plain gradient does, breaks conservation (Ali et al.
  Sec. 3.2); with no bias and eps -> 0 the LN-rule conserves relevance exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from spray.errors import UnsupportedLayerError
from spray.lrp.rules import proportional


def require_running_stats(norm: nn.BatchNorm2d, path: str) -> None:
    """Inference semantics need the running statistics."""
    if norm.running_mean is None:
        raise UnsupportedLayerError(path, "BatchNorm2d without running statistics")


def batch_norm(norm: nn.BatchNorm2d, x: torch.Tensor, path: str) -> torch.Tensor:
    """A BatchNorm2d that follows no conv, as its inference-time affine map (z-rule)."""
    require_running_stats(norm, path)
    weight = None if norm.weight is None else norm.weight.detach()
    bias = None if norm.bias is None else norm.bias.detach()
    return proportional(
        lambda t: F.batch_norm(t, norm.running_mean, norm.running_var, weight, bias, False, 0.0, norm.eps),
        x,
    )


def layer_norm(
    x: torch.Tensor,
    normalized_shape: Sequence[int],
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    eps: float,
    epsilon: float,
) -> torch.Tensor:
    """``F.layer_norm`` explained with the LN-rule (std held constant) and stabiliser ``epsilon``."""
    dims = tuple(range(-len(normalized_shape), 0))
    held = x.detach()
    std = torch.sqrt(held.var(dims, unbiased=False, keepdim=True) + eps)

    def affine(t: torch.Tensor) -> torch.Tensor:
        y = (t - t.mean(dims, keepdim=True)) / std
        if weight is not None:
            y = y * weight
        return y if bias is None else y + bias

    return proportional(affine, x, epsilon=epsilon)
