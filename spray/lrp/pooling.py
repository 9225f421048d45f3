"""Max pooling whose relevance is split evenly among tied maxima (thesis Eqs. 2.33-2.35, L736-L746).

The forward value is the ordinary max pool. On the way back (relevance convention, see
:mod:`spray.lrp.gradient`) output j hands R_j / |T_j| to each input of its window that
equals the window's maximum, T_j being the set of those tied inputs (Eq. 2.35), and nothing
to the others (Eq. 2.33). Autograd's max-pool backward gives all of R_j to the first tied
input instead; on an edge-padded border of uniform colour most windows tie, and that paints
stripes into exactly the region the padding experiment studies.

Padding is -inf, so it is never a tied input. Two window layouts:

- blocks (kernel == stride, no padding, no dilation; adaptive pooling with an exact
  divisor): the input is viewed as tiles; the forward takes maxima over rows, then columns;
  the backward compares each tile with its maximum, counts the ties and spreads the shares
  in a few element-wise passes over the input;
- gathered windows (overlap, padding, dilation, ceil mode, uneven adaptive windows): per
  axis an (outputs, kernel) table of input positions, the windows gathered, and the shares
  scattered back with ``index_add_`` (overlapping windows add up).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

_Pair = int | Sequence[int]


def _absent(stride) -> bool:
    """PyTorch reads a stride of None or [] as "the kernel size"."""
    return stride is None or (not isinstance(stride, int) and len(stride) == 0)


def _single(value: _Pair) -> int:
    return value if isinstance(value, int) else int(value[0])


def _pair(value: _Pair) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    value = tuple(int(v) for v in value)
    return value if len(value) == 2 else (value[0], value[0])


def max_pool2d(
    x: torch.Tensor,
    kernel_size: _Pair,
    stride: _Pair | None = None,
    padding: _Pair = 0,
    dilation: _Pair = 1,
    ceil_mode: bool = False,
) -> torch.Tensor:
    """``F.max_pool2d(x, ...)`` whose relevance splits evenly among tied maxima."""
    kernel = _pair(kernel_size)
    stride = kernel if stride is None or _absent(stride) else _pair(stride)
    padding, dilation = _pair(padding), _pair(dilation)
    if kernel == stride and padding == (0, 0) and dilation == (1, 1):
        rows, cols = (n // k if not ceil_mode else -(-n // k) for n, k in zip(x.shape[-2:], kernel, strict=True))
        if min(rows, cols) >= 1:
            return _EvenMaxPool.apply(x, _Blocks(kernel, (rows, cols)))

    def pool(t: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(t, kernel, stride, padding, dilation, ceil_mode)

    def table(n: int, outputs: int, axis: int) -> torch.Tensor:
        return _strided_table(n, outputs, kernel[axis], stride[axis], padding[axis], dilation[axis], x.device)

    return _EvenMaxPool.apply(x, _Gathered(pool, table))


def max_pool1d(
    x: torch.Tensor,
    kernel_size: _Pair,
    stride: _Pair | None = None,
    padding: _Pair = 0,
    dilation: _Pair = 1,
    ceil_mode: bool = False,
) -> torch.Tensor:
    """``F.max_pool1d`` as a 2-d pool over a height-1 input, with the same even split."""
    kernel = _single(kernel_size)
    stride = kernel if stride is None or _absent(stride) else _single(stride)
    pooled = max_pool2d(
        x.unsqueeze(-2), (1, kernel), (1, stride), (0, _single(padding)), (1, _single(dilation)), ceil_mode
    )
    return pooled.squeeze(-2)


def adaptive_max_pool2d(x: torch.Tensor, output_size: _Pair | Sequence[int | None]) -> torch.Tensor:
    """``F.adaptive_max_pool2d(x, output_size)`` whose relevance splits evenly among tied maxima.

    Window i along an axis of n inputs and o outputs covers [floor(i n / o), ceil((i+1) n / o)),
    as in PyTorch; ``None`` in ``output_size`` keeps that axis' size.
    """
    size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    inputs = (x.shape[-2], x.shape[-1])
    out = (_output_size(size[0], inputs[0]), _output_size(size[1], inputs[1]))
    if all(o >= 1 and n % o == 0 for n, o in zip(inputs, out, strict=True)):
        return _EvenMaxPool.apply(x, _Blocks((inputs[0] // out[0], inputs[1] // out[1]), out))

    def pool(t: torch.Tensor) -> torch.Tensor:
        return F.adaptive_max_pool2d(t, out)

    return _EvenMaxPool.apply(x, _Gathered(pool, lambda n, o, axis: _adaptive_table(n, o, x.device)))


def _output_size(given: int | None, n: int) -> int:
    """An adaptive pool's output size along an axis of ``n`` inputs (None: ``n``, the axis kept)."""
    return n if given is None else int(given)


class _EvenMaxPool(torch.autograd.Function):
    """Forward: the max pool; backward: each output's relevance split over its tied maxima."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, windows) -> torch.Tensor:
        pooled = windows.pool(x)
        ctx.save_for_backward(x, pooled)
        ctx.windows = windows
        return pooled

    @staticmethod
    def backward(ctx, relevance: torch.Tensor):
        x, pooled = ctx.saved_tensors
        return ctx.windows.spread(x, pooled, relevance), None


class _Blocks:
    """Non-overlapping windows that tile the input (kernel == stride, no padding).

    Work happens on rows of tiles, (..., oh, kh, W), so that every broadcast runs along a
    middle axis and the inner loops stay long. Measured on one CPU thread (8x32x224x224
    float32, 2x2): forward 9 ms against torch's max_pool2d 75 ms; forward and backward
    69 ms against autograd's winner-takes-all 108 ms (32x32x64x64: 23 against 30 ms).
    """

    def __init__(self, kernel: tuple[int, int], outputs: tuple[int, int]) -> None:
        self.kernel, self.outputs = kernel, outputs

    def _rows(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` cut (floor mode) or -inf padded (ceil mode) to whole tiles, as (..., oh, kh, ow*kw)."""
        (kh, kw), (out_h, out_w), (h, w) = self.kernel, self.outputs, x.shape[-2:]
        if out_h * kh > h or out_w * kw > w:
            x = F.pad(x, (0, max(out_w * kw - w, 0), 0, max(out_h * kh - h, 0)), value=float("-inf"))
        return x[..., : out_h * kh, : out_w * kw].unflatten(-2, (out_h, kh))

    def _widen(self, t: torch.Tensor) -> torch.Tensor:
        """(..., oh, ow) -> (..., oh, 1, ow*kw): each value repeated over its tile's columns."""
        return t[..., None].expand(*t.shape, self.kernel[1]).flatten(-2)[..., None, :]

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """The block maxima, over rows and then over columns (exact: max is order-free)."""
        out_w, kw = self.outputs[1], self.kernel[1]
        rows = _reduce(torch.maximum, self._rows(x), -2)  # (..., oh, ow*kw)
        return _reduce(torch.maximum, rows.unflatten(-1, (out_w, kw)), -1)

    def spread(self, x: torch.Tensor, pooled: torch.Tensor, relevance: torch.Tensor) -> torch.Tensor:
        (kh, kw), (out_h, out_w), (h, w) = self.kernel, self.outputs, x.shape[-2:]
        ties = torch.eq(self._rows(x), self._widen(pooled)).to(relevance.dtype)  # (..., oh, kh, ow*kw)
        count = _reduce(torch.add, _reduce(torch.add, ties, -2).unflatten(-1, (out_w, kw)), -1)
        spread = ties.mul_(self._widen(relevance / count)).flatten(-3, -2)
        uncovered = (0, w - out_w * kw, 0, h - out_h * kh)  # rows/columns outside every window get 0
        return F.pad(spread, uncovered) if any(uncovered) else spread


def _reduce(op, x: torch.Tensor, dim: int) -> torch.Tensor:
    """``op`` (torch.maximum or torch.add) folded over a short axis ``dim`` of ``x``.

    A running element-wise op over the slices is much faster on CPU than ``amax``/``sum``
    over a short strided axis; long axes (a global pool) use those.
    """
    size = x.shape[dim]
    if size > 16:
        return x.amax(dim) if op is torch.maximum else x.sum(dim)
    if size == 1:
        return x.select(dim, 0).clone()
    result = op(x.select(dim, 0), x.select(dim, 1))
    for i in range(2, size):
        op(result, x.select(dim, i), out=result)
    return result


class _Gathered:
    """Windows given per axis as (outputs, kernel) tables of input positions.

    ``pool`` is torch's own pooling op; ``table(n, o, axis)`` gives, for an axis of n inputs
    and o outputs, the input index of each window element, n where the element is padding
    (read from a -inf sentinel).
    """

    def __init__(self, pool, table) -> None:
        self.pool, self.table = pool, table

    def spread(self, x: torch.Tensor, pooled: torch.Tensor, relevance: torch.Tensor) -> torch.Tensor:
        (h, w), (out_h, out_w) = x.shape[-2:], pooled.shape[-2:]
        rows, cols = self.table(h, out_h, 0), self.table(w, out_w, 1)
        rows, cols = rows[:, :, None, None], cols[None, None]
        sentinel = F.pad(x, (0, 1, 0, 1), value=float("-inf"))
        windows = sentinel[..., rows, cols]  # (..., oh, kh, ow, kw)
        ties = windows == pooled[..., :, None, :, None]
        share = relevance / ties.sum((-3, -1), dtype=relevance.dtype)
        contributions = (ties * share[..., :, None, :, None]).flatten(-4)
        spread = relevance.new_zeros(*x.shape[:-2], (h + 1) * (w + 1))
        spread.index_add_(-1, (rows * (w + 1) + cols).flatten(), contributions)
        return spread.unflatten(-1, (h + 1, w + 1))[..., :h, :w]


def _strided_table(
    n: int, outputs: int, kernel: int, stride: int, padding: int, dilation: int, device: torch.device
) -> torch.Tensor:
    """Input index of element k of window i: i * stride - padding + k * dilation (n: padding)."""
    index = (
        torch.arange(outputs, device=device)[:, None] * stride
        - padding
        + torch.arange(kernel, device=device)[None] * dilation
    )
    return torch.where((index >= 0) & (index < n), index, n)


def _adaptive_table(n: int, outputs: int, device: torch.device) -> torch.Tensor:
    """Windows [floor(i n / o), ceil((i+1) n / o)) padded to the widest with the sentinel n."""
    widest = max(-((-(i + 1) * n) // outputs) - (i * n) // outputs for i in range(outputs))
    i = torch.arange(outputs, device=device)
    start, end = (i * n) // outputs, -((-(i + 1) * n) // outputs)
    index = start[:, None] + torch.arange(widest, device=device)[None]
    return torch.where(index < end[:, None], index, n)
