"""A slow LRP written straight from the thesis formulas, to check the engine against.

Every affine layer builds its contributions z_ij explicitly: x_i w_ij for dense layers and,
for convolutions, per output position from ``torch.nn.functional.unfold`` patches. The rule
is then the Table 2.1 formula (L636-L694) on those z_ij, with the bias as a neuron (L722).
:func:`reference_lrp` walks ``nn.Sequential`` models; the ``*_reference`` functions at the end
walk the test architectures of ``lrp_models`` by hand, each step a formula below:

- max pooling window by window, ties split evenly (Eqs. 2.33-2.35, L736-L746);
- sums (residual additions, Eq. 2.39, L772) and means (average pooling, L730) by the z-rule;
- LayerNorm as the linear map it is with its std held constant, z_ik = x_i (delta_ik - 1/N)
  w_k / std, and the epsilon-rule (the LN-rule of Ali et al. 2022);
- a gate held constant: the feature operand keeps its output's relevance (Arras et al. 2017).

No autograd anywhere.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from spray.lrp import AlphaBeta, Composite, Epsilon, Flat, WSquare


def _ratio(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """numerator / denominator with 0/0 := 0."""
    return numerator / torch.where(denominator == 0, torch.ones_like(denominator), denominator)


def decompose(
    rule,
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    inside: torch.Tensor,
    relevance: torch.Tensor,
) -> torch.Tensor:
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
    """A dense layer on the last axis of ``a`` (any leading axes: channels-last inputs)."""
    weight = (layer.weight * scale[:, None])[None]
    rows = a.reshape(-1, 1, a.shape[-1])
    result = decompose(rule, rows, weight, shift, torch.ones_like(rows), relevance.reshape(-1, weight.shape[1]))
    return result.reshape(a.shape)


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


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _pool_windows(pool: nn.Module, size: int, outputs: int, axis: int) -> list[list[int]]:
    """Input positions of each window along one axis (padding left out: it is no input)."""
    if isinstance(pool, nn.AdaptiveMaxPool2d):
        # PyTorch's adaptive windows: [floor(i n / o), ceil((i + 1) n / o))
        return [list(range(i * size // outputs, -(-(i + 1) * size // outputs))) for i in range(outputs)]
    kernel = _pair(pool.kernel_size)[axis]
    stride = _pair(pool.stride or pool.kernel_size)[axis]
    padding, dilation = _pair(pool.padding)[axis], _pair(pool.dilation)[axis]
    windows = []
    for i in range(outputs):
        positions = [i * stride - padding + k * dilation for k in range(kernel)]
        windows.append([p for p in positions if 0 <= p < size])
    return windows


def max_pool_relevance(pool: nn.Module, a: torch.Tensor, relevance: torch.Tensor) -> torch.Tensor:
    """Eqs. 2.33-2.35 (L736-L746), window by window: R_j goes to the inputs equal to the
    window's maximum, split evenly among them when several tie."""
    (height, width), (out_h, out_w) = a.shape[-2:], relevance.shape[-2:]
    rows, cols = _pool_windows(pool, height, out_h, 0), _pool_windows(pool, width, out_w, 1)
    result = torch.zeros_like(a)
    for i, window_rows in enumerate(rows):
        for j, window_cols in enumerate(cols):
            r, c = torch.tensor(window_rows)[:, None], torch.tensor(window_cols)[None, :]
            window = a[..., r, c]
            ties = window == window.amax((-2, -1), keepdim=True)
            share = relevance[..., i, j] / ties.sum((-2, -1))
            result[..., r, c] += ties * share[..., None, None]
    return result


def _avg_pool_as_conv(pool: nn.AvgPool2d, channels: int, dtype) -> nn.Conv2d:
    """Average pooling as a depthwise conv with w = 1/n (L730)."""
    k = pool.kernel_size if isinstance(pool.kernel_size, tuple) else (pool.kernel_size,) * 2
    conv = nn.Conv2d(channels, channels, k, stride=pool.stride, groups=channels, bias=False)
    conv = conv.to(dtype)
    with torch.no_grad():
        conv.weight.fill_(1.0 / (k[0] * k[1]))
    return conv


def reference_lrp(
    model: nn.Sequential,
    x: torch.Tensor,
    target: int,
    composite: Composite,
    arriving: dict[str, torch.Tensor] | None = None,
):
    """Relevance of ``x`` for logit ``target`` by explicit per-layer decomposition.

    ``arriving``, if given, receives the relevance arriving at each layer's output, keyed by
    the layer's index as a string (its module path in the Sequential)."""
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
            if arriving is not None:
                arriving[str(i)] = relevance
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
            elif isinstance(layer, (nn.MaxPool2d, nn.AdaptiveMaxPool2d)):
                relevance = max_pool_relevance(layer, a, relevance)
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


# ---- building blocks for hand-walked architectures ------------------------------------------


def conv_bn_relevance(rule, conv: nn.Conv2d, norm: nn.BatchNorm2d | None, a, relevance):
    """A conv (and the BatchNorm after it, as one affine map) by the rule's formula."""
    scale = torch.ones(conv.out_channels, dtype=a.dtype)
    shift = conv.bias
    if norm is not None:
        scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
        bias = torch.zeros_like(scale) if shift is None else shift
        shift = (bias - norm.running_mean) * scale + norm.bias
    return _conv(rule, conv, scale, shift, a, relevance)


def dense_relevance(rule, layer: nn.Linear, a, relevance):
    return _dense(rule, layer, torch.ones(layer.out_features, dtype=a.dtype), layer.bias, a, relevance)


def sum_relevance(parts: list[torch.Tensor], relevance) -> list[torch.Tensor]:
    """z-rule of y = sum_k a_k (Eq. 2.39, L772): R_k = a_k / y R."""
    total = sum(parts)
    return [_ratio(part, total) * relevance for part in parts]


def mean_relevance(a, dims: tuple[int, ...], relevance):
    """z-rule of an average (L730): R_i = (a_i / n) / mean(a) R = a_i / sum(a) R."""
    return _ratio(a, a.sum(dims, keepdim=True)) * relevance


def layer_norm_relevance(norm: nn.LayerNorm, a, relevance, epsilon: float):
    """LayerNorm over the last axis, its std held constant, by the epsilon-rule on
    z_ik = x_i (delta_ik - 1/N) w_k / std with bias b_k (Ali et al. 2022, Sec. 3.2)."""
    n = a.shape[-1]
    rows = a.reshape(-1, n)
    std = torch.sqrt(rows.var(-1, unbiased=False) + norm.eps)
    centring = torch.eye(n, dtype=a.dtype) - 1.0 / n  # [k, i] = delta_ik - 1/N
    weight = centring[None] * norm.weight[None, :, None] / std[:, None, None]  # (rows, k, i)
    result = decompose(
        Epsilon(epsilon),
        rows[:, None, :],
        weight,
        norm.bias,
        torch.ones_like(rows[:, None, :]),
        relevance.reshape(-1, n),
    )
    return result.reshape(a.shape)


def layer_norm_2d_relevance(norm: nn.LayerNorm, a, relevance, epsilon: float):
    """LayerNorm over the channels of an NCHW tensor (ConvNeXt's LayerNorm2d)."""
    last = layer_norm_relevance(norm, a.permute(0, 2, 3, 1), relevance.permute(0, 2, 3, 1), epsilon)
    return last.permute(0, 3, 1, 2)


def _one_hot_logit(logits, target: int):
    relevance = torch.zeros_like(logits)
    relevance[:, target] = logits[:, target]
    return relevance


# ---- the test architectures of lrp_models, walked by hand --------------------------------------


def mbconv_reference(model, x, target: int, composite: Composite):
    """MBConvNet: the SE gate and the stem's x * sigmoid(x) give all relevance to the features."""
    conv, dense = composite.rule_for("conv", False), composite.rule_for("dense", False)
    with torch.no_grad():
        stem = model.stem(x)
        h = stem * torch.sigmoid(stem)
        trace = []
        for block in model.blocks:
            expanded = block.block[0](h)
            depthwise = block.block[1](expanded)
            gated = block.block[2](depthwise)
            projected = block.block[3](gated)
            trace.append((h, expanded, depthwise, gated, projected))
            h = projected + h
        pooled = h.mean((2, 3))
        logits = model.head(pooled)
        relevance = dense_relevance(dense, model.head, pooled, _one_hot_logit(logits, target))
        relevance = mean_relevance(h, (2, 3), relevance[:, :, None, None])
        for block, (h_in, expanded, _depthwise, gated, projected) in zip(
            reversed(model.blocks), reversed(trace), strict=True
        ):
            branch, skip = sum_relevance([projected, h_in], relevance)
            branch = conv_bn_relevance(conv, block.block[3][0], block.block[3][1], gated, branch)
            # gated = scale * depthwise, scale held constant: depthwise keeps the relevance
            branch = conv_bn_relevance(conv, block.block[1][0], block.block[1][1], expanded, branch)
            branch = conv_bn_relevance(conv, block.block[0][0], block.block[0][1], h_in, branch)
            relevance = branch + skip
        # h = stem * sigmoid(stem): the stem keeps the relevance
        first = composite.rule_for("conv", True)
        return conv_bn_relevance(first, model.stem[0], model.stem[1], x, relevance), logits


def _cn_block_reference(block, a, relevance, conv, dense, epsilon: float):
    depthwise = block.block[0](a)
    channels_last = depthwise.permute(0, 2, 3, 1)
    normed = block.block[2](channels_last)
    hidden = block.block[3](normed)
    activated = block.block[4](hidden)
    back = block.block[5](activated).permute(0, 3, 1, 2)
    scaled = block.layer_scale * back
    branch, skip = sum_relevance([scaled, a], relevance)
    # layer scale: a constant factor, each value keeps its relevance; GELU passes it on
    branch = dense_relevance(dense, block.block[5], activated, branch.permute(0, 2, 3, 1))
    branch = dense_relevance(dense, block.block[3], normed, branch)
    branch = layer_norm_relevance(block.block[2], channels_last, branch, epsilon).permute(0, 3, 1, 2)
    return conv_bn_relevance(conv, block.block[0], None, a, branch) + skip


def convnext_reference(model, x, target: int, composite: Composite, ln_epsilon: float):
    """ConvNeXtNet, with ``ln_epsilon`` the LayerNorm rule's stabiliser."""
    conv, dense = composite.rule_for("conv", False), composite.rule_for("dense", False)
    stem, block1, down, block3 = model.features
    with torch.no_grad():
        f0 = stem[0](x)
        n0 = stem[1](f0)
        out1 = block1(n0)
        n2 = down[0](out1)
        out3 = block3(down[1](n2))
        pooled = out3.mean((2, 3), keepdim=True)
        normed = model.classifier[0](pooled)
        logits = model.classifier[2](normed.flatten(1))
        relevance = dense_relevance(dense, model.classifier[2], normed.flatten(1), _one_hot_logit(logits, target))
        relevance = layer_norm_2d_relevance(model.classifier[0], pooled, relevance[:, :, None, None], ln_epsilon)
        relevance = mean_relevance(out3, (2, 3), relevance)
        relevance = _cn_block_reference(block3, down[1](n2), relevance, conv, dense, ln_epsilon)
        relevance = conv_bn_relevance(conv, down[1], None, n2, relevance)
        relevance = layer_norm_2d_relevance(down[0], out1, relevance, ln_epsilon)
        relevance = _cn_block_reference(block1, n0, relevance, conv, dense, ln_epsilon)
        relevance = layer_norm_2d_relevance(stem[1], f0, relevance, ln_epsilon)
        return conv_bn_relevance(composite.rule_for("conv", True), stem[0], None, x, relevance), logits


def _shuffle_source(channels: int, groups: int) -> torch.Tensor:
    """Channel shuffle as a permutation: output channel q holds input channel source[q].

    Input channel g * (C / groups) + j goes to output position j * groups + g."""
    per_group = channels // groups
    source = torch.empty(channels, dtype=torch.long)
    for g in range(groups):
        for j in range(per_group):
            source[j * groups + g] = g * per_group + j
    return source


def shuffle_reference(model, x, target: int, composite: Composite):
    """ShuffleNet: split halves, a conv branch, concatenation and a channel shuffle."""
    conv, dense = composite.rule_for("conv", False), composite.rule_for("dense", False)
    with torch.no_grad():
        c1 = model.conv1(x)
        h = model.maxpool(c1)
        trace = []
        for unit in model.stage2:
            half = h.shape[1] // 2
            x2 = h[:, half:]
            b0 = unit.branch2[0](x2)
            b1 = unit.branch2[1](b0)
            b2 = unit.branch2[2](b1)
            trace.append((h, x2, b0, b1))
            h = torch.cat((h[:, :half], b2), 1)[:, _shuffle_source(h.shape[1], 2)]
        c5 = model.conv5(h)
        pooled = c5.mean((2, 3))
        logits = model.fc(pooled)
        relevance = dense_relevance(dense, model.fc, pooled, _one_hot_logit(logits, target))
        relevance = mean_relevance(c5, (2, 3), relevance[:, :, None, None])
        relevance = conv_bn_relevance(conv, model.conv5[0], model.conv5[1], h, relevance)
        for unit, (h_in, x2, b0, b1) in zip(reversed(model.stage2), reversed(trace), strict=True):
            unshuffled = torch.empty_like(relevance)
            unshuffled[:, _shuffle_source(relevance.shape[1], 2)] = relevance
            half = h_in.shape[1] // 2
            branch = conv_bn_relevance(conv, unit.branch2[2][0], unit.branch2[2][1], b1, unshuffled[:, half:])
            branch = conv_bn_relevance(conv, unit.branch2[1][0], unit.branch2[1][1], b0, branch)
            branch = conv_bn_relevance(conv, unit.branch2[0][0], unit.branch2[0][1], x2, branch)
            relevance = torch.cat((unshuffled[:, :half], branch), 1)
        relevance = max_pool_relevance(model.maxpool, c1, relevance)
        first = composite.rule_for("conv", True)
        return conv_bn_relevance(first, model.conv1[0], model.conv1[1], x, relevance), logits


def _basic_block_reference(block, a, relevance, conv):
    identity = a if block.downsample is None else block.downsample(a)
    hidden = torch.relu(block.bn1(block.conv1(a)))
    branch_out = block.bn2(block.conv2(hidden))
    branch, skip = sum_relevance([branch_out, identity], relevance)
    branch = conv_bn_relevance(conv, block.conv2, block.bn2, hidden, branch)
    branch = conv_bn_relevance(conv, block.conv1, block.bn1, a, branch)
    if block.downsample is not None:
        skip = conv_bn_relevance(conv, block.downsample[0], block.downsample[1], a, skip)
    return branch + skip


def resnet_reference(model, x, target: int, composite: Composite):
    """ResNetStyle: conv + BN pairs, max pooling with padding, residual additions."""
    conv, dense = composite.rule_for("conv", False), composite.rule_for("dense", False)
    with torch.no_grad():
        stem = torch.relu(model.bn1(model.conv1(x)))
        h0 = model.maxpool(stem)
        (block1,), (block2,) = model.layer1, model.layer2
        h1 = block1(h0.clone())
        h2 = block2(h1.clone())
        pooled = h2.mean((2, 3))
        logits = model.fc(pooled)
        relevance = dense_relevance(dense, model.fc, pooled, _one_hot_logit(logits, target))
        relevance = mean_relevance(h2, (2, 3), relevance[:, :, None, None])
        relevance = _basic_block_reference(block2, h1, relevance, conv)
        relevance = _basic_block_reference(block1, h0, relevance, conv)
        relevance = max_pool_relevance(model.maxpool, stem, relevance)
        first = composite.rule_for("conv", True)
        return conv_bn_relevance(first, model.conv1, model.bn1, x, relevance), logits
