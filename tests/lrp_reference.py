"""A slow LRP written straight from the thesis formulas, to check the engine against.

Every affine layer builds its contributions z_ij explicitly: x_i w_ij for dense layers and,
for convolutions, per output position from ``torch.nn.functional.unfold`` patches. The rule
is then the Table 2.1 formula (L636-L694) on those z_ij, with the bias as a neuron (L722).
Only for ``nn.Sequential`` models; no autograd anywhere.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from spray.lrp import AlphaBeta, Composite, Epsilon, Flat, WSquare


def _ratio(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """numerator / denominator with 0/0 := 0."""
    return numerator / torch.where(denominator == 0, torch.ones_like(denominator), denominator)


def decompose(rule, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
              inside: torch.Tensor, relevance: torch.Tensor) -> torch.Tensor:
    """R_i = sum_j rule(z_ij) R_j with z_ij = x_i w_ij, for x (N, 1, I), weight (1, J, I),
    bias (J,), R (N, J); ``inside`` (N, 1, I) is 1 for real inputs and 0 for padding."""
    z = x * weight
    b = torch.zeros(z.shape[1], dtype=z.dtype) if bias is None else bias
    if isinstance(rule, Epsilon):
        z_j = z.sum(-1) + b
        stabilised = torch.where(z_j >= 0, z_j + rule.epsilon, z_j - rule.epsilon)
        return (_ratio(z, stabilised[..., None]) * relevance[..., None]).sum(1)
    if isinstance(rule, AlphaBeta):
        z_pos, z_neg = z.clamp(min=0), z.clamp(max=0)
        pos_j = z_pos.sum(-1) + b.clamp(min=0)
        neg_j = z_neg.sum(-1) + b.clamp(max=0)
        share = rule.alpha * _ratio(z_pos, pos_j[..., None]) + rule.beta * _ratio(z_neg, neg_j[..., None])
        return (share * relevance[..., None]).sum(1)
    if isinstance(rule, (Flat, WSquare)):
        mask = inside * (torch.ones_like(weight) if isinstance(rule, Flat) else weight**2)
        return (_ratio(mask, mask.sum(-1, keepdim=True)) * relevance[..., None]).sum(1)
    raise TypeError(rule)


def _dense(rule, layer: nn.Linear, scale, shift, a, relevance):
    weight = (layer.weight * scale[:, None])[None]
    return decompose(rule, a[:, None, :], weight, shift, torch.ones_like(a[:, None, :]), relevance)


def _conv(rule, conv: nn.Conv2d, scale, shift, a, relevance):
    kernel = conv.kernel_size
    patches = F.unfold(a, kernel, conv.dilation, conv.padding, conv.stride)  # (B, C*k, L)
    inside = F.unfold(torch.ones_like(a), kernel, conv.dilation, conv.padding, conv.stride)
    batch, _, positions = patches.shape
    groups = conv.groups
    per_group_in = patches.shape[1] // groups
    per_group_out = conv.out_channels // groups
    weight = (conv.weight * scale[:, None, None, None]).reshape(conv.out_channels, per_group_in)
    r_out = relevance.reshape(batch, conv.out_channels, positions)
    pieces = []
    for g in range(groups):
        rows = slice(g * per_group_in, (g + 1) * per_group_in)
        outs = slice(g * per_group_out, (g + 1) * per_group_out)
        x_g = patches[:, rows].permute(0, 2, 1).reshape(batch * positions, 1, per_group_in)
        in_g = inside[:, rows].permute(0, 2, 1).reshape(batch * positions, 1, per_group_in)
        w_g = weight[outs][None]
        r_g = r_out[:, outs].permute(0, 2, 1).reshape(batch * positions, per_group_out)
        bias = None if shift is None else shift[outs]
        r_in = decompose(rule, x_g, w_g, bias, in_g, r_g)
        pieces.append(r_in.reshape(batch, positions, per_group_in).permute(0, 2, 1))
    r_patches = torch.cat(pieces, 1)
    return F.fold(r_patches, a.shape[-2:], kernel, conv.dilation, conv.padding, conv.stride)


def _max_pool(pool: nn.MaxPool2d, a, relevance):
    """Winner takes all (Eq. 2.33-2.35, L736)."""
    _, index = F.max_pool2d(a, pool.kernel_size, pool.stride, pool.padding, pool.dilation,
                            pool.ceil_mode, return_indices=True)
    flat = torch.zeros_like(a).flatten(2)
    flat.scatter_add_(2, index.flatten(2), relevance.flatten(2))
    return flat.reshape(a.shape)


def _avg_pool_as_conv(pool: nn.AvgPool2d, channels: int, dtype) -> nn.Conv2d:
    """Average pooling as a depthwise conv with w = 1/n (L730)."""
    k = pool.kernel_size if isinstance(pool.kernel_size, tuple) else (pool.kernel_size,) * 2
    conv = nn.Conv2d(channels, channels, k, stride=pool.stride, groups=channels, bias=False)
    conv = conv.to(dtype)
    with torch.no_grad():
        conv.weight.fill_(1.0 / (k[0] * k[1]))
    return conv


def reference_lrp(model: nn.Sequential, x: torch.Tensor, target: int, composite: Composite):
    """Relevance of ``x`` for logit ``target`` by explicit per-layer decomposition."""
    layers = list(model)
    activations = [x]
    with torch.no_grad():
        for layer in layers:
            activations.append(layer(activations[-1]))
        logits = activations[-1]
        relevance = torch.zeros_like(logits)
        relevance[:, target] = logits[:, target]
        first = next(i for i, m in enumerate(layers) if isinstance(m, (nn.Conv2d, nn.Linear)))
        for i in reversed(range(len(layers))):
            layer, a = layers[i], activations[i]
            if isinstance(layer, nn.BatchNorm2d):
                continue  # handled together with the conv before it
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                scale = torch.ones(layer.weight.shape[0], dtype=x.dtype)
                shift = layer.bias
                following = layers[i + 1] if i + 1 < len(layers) else None
                if isinstance(following, nn.BatchNorm2d):
                    # conv + BN: z_ij = x_i w_ij s_j, bias (b_j - mu_j) s_j + beta_j
                    scale = following.weight / torch.sqrt(following.running_var + following.eps)
                    bias = torch.zeros_like(scale) if shift is None else shift
                    shift = (bias - following.running_mean) * scale + following.bias
                kind = "conv" if isinstance(layer, nn.Conv2d) else "dense"
                rule = composite.rule_for(kind, is_first=i == first)
                step = _conv if kind == "conv" else _dense
                relevance = step(rule, layer, scale, shift, a, relevance)
            elif isinstance(layer, nn.MaxPool2d):
                relevance = _max_pool(layer, a, relevance)
            elif isinstance(layer, nn.AvgPool2d):
                pool = _avg_pool_as_conv(layer, a.shape[1], a.dtype)
                relevance = _conv(Epsilon(0.0), pool, torch.ones(a.shape[1], dtype=a.dtype), None, a, relevance)
            elif isinstance(layer, nn.Flatten):
                relevance = relevance.reshape(a.shape)
            elif isinstance(layer, (nn.ReLU, nn.Dropout, nn.Identity)):
                pass  # element-wise: relevance passes unchanged (Eq. 2.37, L756)
            else:
                raise TypeError(f"reference has no rule for {type(layer).__name__}")
    return relevance
