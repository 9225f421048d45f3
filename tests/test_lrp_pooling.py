"""Max pooling: winner takes all, tied maxima split their relevance evenly (Eqs. 2.33-2.35, L736-L746)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from lrp_models import conv_net, inputs, relative_error
from lrp_reference import max_pool_relevance, reference_lrp
from torch import nn

from spray.lrp import THESIS, Basic, Composite, Flat, attribute, attribute_layers, pooling

# name: (module, the same pool as a function call)
POOLS = {
    "2x2": (nn.MaxPool2d(2), lambda t: F.max_pool2d(t, 2)),
    "3x3 stride 2 padding 1": (nn.MaxPool2d(3, 2, 1), lambda t: F.max_pool2d(t, 3, 2, 1)),
    "3x3 dilation 2": (nn.MaxPool2d(3, 2, 1, dilation=2), lambda t: F.max_pool2d(t, 3, 2, 1, dilation=2)),
    "2x2 ceil mode": (nn.MaxPool2d(2, ceil_mode=True), lambda t: F.max_pool2d(t, 2, ceil_mode=True)),
    "3x3/2 padding ceil": (nn.MaxPool2d(3, 2, 1, ceil_mode=True), lambda t: F.max_pool2d(t, 3, 2, 1, ceil_mode=True)),
    "2x3 stride 1x2": (nn.MaxPool2d((2, 3), (1, 2)), lambda t: F.max_pool2d(t, (2, 3), stride=(1, 2))),
    "adaptive 4x3": (nn.AdaptiveMaxPool2d((4, 3)), lambda t: F.adaptive_max_pool2d(t, (4, 3))),
    "adaptive exact divisor": (nn.AdaptiveMaxPool2d((3, 1)), lambda t: F.adaptive_max_pool2d(t, (3, 1))),
}


class _Call(nn.Module):
    """A pool written as a function call in a forward (traced by torch.fx)."""

    def __init__(self, function) -> None:
        super().__init__()
        self.function = function

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.function(x)


def _tied_inputs(shape=(2, 3, 9, 11), seed: int = 0) -> torch.Tensor:
    """Values from {-1, 0, 1, 2}: most windows hold tied maxima, some negative ones."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(-1, 3, shape, generator=generator).double()


def _pool_net(pool: nn.Module, x: torch.Tensor) -> nn.Sequential:
    """pool -> flatten -> dense, bias-free; relevance is read at the pool's output ("0")."""
    torch.manual_seed(0)
    with torch.no_grad():
        width = pool(x).flatten(1).shape[1]
    return nn.Sequential(pool, nn.Flatten(), nn.Linear(width, 3, bias=False)).double().eval()


def _winner_takes_all(pool_function, x, relevance):
    """Autograd's max-pool backward: the first tied input takes all."""
    x = x.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(pool_function(x), x, relevance)
    return gradient


@pytest.mark.parametrize("form", ["module", "function"])
@pytest.mark.parametrize("name", list(POOLS))
def test_tied_maxima_share_relevance_evenly_as_the_formula_says(name, form):
    module, function = POOLS[name]
    x = _tied_inputs()
    net = _pool_net(module if form == "module" else _Call(function), x)
    relevance, _, layers, _ = attribute_layers(net, x, 1, ["0"], Composite.uniform(Basic()))
    arriving = layers["0"]
    expected = max_pool_relevance(module, x, arriving)
    assert relative_error(relevance, expected) <= 1e-12
    # the case is one with ties: the first-takes-all backward gives another map
    assert relative_error(_winner_takes_all(function, x, arriving), expected) > 1e-2
    # local conservation (Eq. 2.34): every window hands on all of its relevance
    assert abs(float(relevance.sum() - arriving.sum())) <= 1e-12 * float(arriving.abs().sum())


@pytest.mark.parametrize("name", list(POOLS))
def test_without_ties_values_and_relevance_are_the_ordinary_max_pool(name):
    module, function = POOLS[name]
    x = inputs((2, 3, 9, 11), seed=3)  # continuous values: no ties
    expected_value = function(x)
    relevance_out = torch.rand(expected_value.shape, generator=torch.Generator().manual_seed(4), dtype=x.dtype)
    leaf = x.clone().requires_grad_(True)
    value = _even(module, leaf)
    assert torch.equal(value, expected_value)
    (relevance,) = torch.autograd.grad(value, leaf, relevance_out)
    assert torch.allclose(relevance, _winner_takes_all(function, x, relevance_out), rtol=0, atol=1e-15)


def _even(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    if isinstance(module, nn.AdaptiveMaxPool2d):
        return pooling.adaptive_max_pool2d(x, module.output_size)
    return pooling.max_pool2d(x, module.kernel_size, module.stride, module.padding, module.dilation, module.ceil_mode)


def test_padding_is_never_a_tied_input():
    # All inputs -1: with zero padding the padded values would win; with -inf padding each
    # window splits over its real inputs only. The corner 2x2/2 window with padding 1 holds
    # one real input, which takes all of that window's relevance.
    x = -torch.ones(1, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    y = pooling.max_pool2d(x, 2, 2, 1)
    relevance_out = torch.arange(1.0, 10.0, dtype=torch.float64).reshape(1, 1, 3, 3)
    (relevance,) = torch.autograd.grad(y, x, relevance_out)
    assert float(relevance[0, 0, 0, 0]) == 1.0  # the corner window's R, alone
    assert float(relevance[0, 0, 0, 1]) == float(relevance[0, 0, 0, 2]) == 2.0 / 2  # a 1x2 window
    assert float(relevance.sum()) == float(relevance_out.sum())
    expected = max_pool_relevance(nn.MaxPool2d(2, 2, 1), x.detach(), relevance_out)
    assert torch.equal(relevance, expected)


def test_edge_padded_border_gets_no_stripes():
    # An edge-padded image (thesis padding, L2150ff.): the border repeats the outermost
    # pixels, so a 1x1 conv + ReLU gives equal values along it and the 2x2 pooling windows
    # there tie. Each tied input gets the same share; first-takes-all gave one in 2 or 4.
    centre = inputs((1, 3, 6, 6), seed=5)
    image = F.pad(centre, (5, 5, 5, 5), mode="replicate")
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 8 * 8, 2))
    net = net.double().eval()
    with torch.no_grad():
        net[0].weight.abs_()  # positive features: the ReLU keeps the ties non-zero
    _, _, layers, _ = attribute_layers(net, image, 0, ["0", "2"], THESIS)
    pooled_input = net[1](net[0](image)).detach()
    windows = pooled_input.unfold(2, 2, 2).unfold(3, 2, 2).flatten(-2)  # (1, 4, 8, 8, 4)
    tied = (windows == windows.amax(-1, keepdim=True)).sum(-1) > 1
    assert tied.float().mean() > 0.5  # more than half of the windows tie
    # within every window the tied maxima hold equal shares of its relevance, the rest none
    shares = layers["0"].unfold(2, 2, 2).unfold(3, 2, 2).flatten(-2)
    winners = windows == windows.amax(-1, keepdim=True)
    expected = layers["2"][..., None] / winners.sum(-1, keepdim=True) * winners
    assert torch.allclose(shares, expected, rtol=0, atol=1e-12 * float(layers["2"].abs().max()))


@pytest.mark.parametrize("composite", [THESIS, Composite.uniform(Flat())], ids=["thesis", "flat"])
def test_planted_uniform_region_matches_the_reference(composite):
    # A uniform square in the input makes the first conv's outputs equal inside it, so the
    # first max pool meets ties carrying relevance; the engine matches the formula there.
    model = conv_net(seed=2)
    x = inputs((2, 3, 16, 16), seed=6)
    x[:, :, 3:13, 3:13] = x[:, :, 3:4, 3:4]
    with torch.no_grad():
        pooled_input = model[1](model[0](x))
    windows = pooled_input.unfold(2, 2, 2).unfold(3, 2, 2).flatten(-2)
    ties = ((windows == windows.amax(-1, keepdim=True)).sum(-1) > 1) & (windows.amax(-1) > 0)
    assert ties.sum() >= 20
    expected = reference_lrp(model, x, 3, composite)
    relevance, _ = attribute(model, x, 3, composite)
    assert relative_error(relevance, expected) <= 1e-10
