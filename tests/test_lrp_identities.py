"""Thesis identities the engine must satisfy (SPEC §3.1, §3.5)."""

from __future__ import annotations

import copy

import pytest
import torch
from lrp_models import (
    conv_bn_net,
    conv_net,
    inputs,
    odd_layers_net,
    relative_error,
    relu_mlp,
    residual_concat_net,
)
from torch import nn

from spray.lrp import EPSILON, THESIS, AlphaBeta, Basic, Composite, Epsilon, Flat, WSquare, ZPlus, attribute

MODELS = {
    "mlp": (relu_mlp, (4, 3, 2, 2)),
    "conv": (conv_net, (3, 3, 16, 16)),
    "conv_bn": (conv_bn_net, (3, 3, 8, 8)),
    "residual_concat": (residual_concat_net, (3, 3, 8, 8)),
    "odd_layers": (odd_layers_net, (3, 3, 8, 8)),
}


def _gradient_times_input(model, x, target):
    x = x.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(model(x)[:, target].sum(), x)
    return gradient * x


@pytest.mark.parametrize("name", list(MODELS))
def test_basic_rule_equals_gradient_times_input(name):
    # Eq. 2.61 (L899-L901): in ReLU nets with biases, LRP-0 is gradient x input.
    build, shape = MODELS[name]
    model, x = build(seed=2), inputs(shape, seed=3)
    relevance, _ = attribute(model, x, 1, Composite.uniform(Basic()))
    assert relative_error(relevance, _gradient_times_input(model, x, 1)) <= 1e-8


CONSERVING = [Epsilon(1e-12), AlphaBeta(2.0, -1.0), ZPlus(), Flat(), WSquare()]


@pytest.mark.parametrize(
    "name, rule",
    [("mlp", rule) for rule in CONSERVING]
    # On the conv net only rules whose zero denominators carry no relevance: with alpha-beta,
    # its sparse depthwise conv meets z-_j = 0 (passing alpha R_j); with flat/w^2 in hidden
    # layers, dead units receive relevance that the average pool (z = 0) cannot pass on.
    + [("conv", Epsilon(1e-12)), ("conv", ZPlus())],
    ids=repr,
)
def test_relevance_is_conserved_without_biases(name, rule):
    # Eq. 2.5 (L495): without biases (which absorb relevance, Eq. 2.16) and with a vanishing
    # stabiliser, the input relevance sums to the explained logit.
    build, shape = MODELS[name]
    model, x = build(seed=4, bias=False), inputs(shape, seed=5)
    relevance, logits = attribute(model, x, 0, Composite.uniform(rule))
    totals = relevance.flatten(1).sum(1)
    assert torch.all((totals - logits[:, 0]).abs() <= 1e-8 * logits[:, 0].abs())


@pytest.mark.parametrize("activation", [nn.Tanh, nn.LeakyReLU, nn.GELU])
def test_element_wise_activations_pass_relevance_unchanged(activation):
    # Eq. 2.37 (L756): whatever the activation, a bias-free net still conserves relevance
    # (a gradient through the activation's derivative would not).
    model, x = relu_mlp(seed=9, bias=False, activation=activation), inputs((4, 3, 2, 2), seed=10)
    relevance, logits = attribute(model, x, 2, Composite.uniform(Epsilon(1e-12)))
    totals = relevance.flatten(1).sum(1)
    assert torch.all((totals - logits[:, 2]).abs() <= 1e-8 * logits[:, 2].abs())


def _shifted_pair(seed: int = 6):
    """Network A on x and network B on x - m with m compensated in B's first bias (Eq. 2.63)."""
    torch.manual_seed(seed)
    net_a = (
        nn.Sequential(
            nn.Conv2d(3, 6, 3), nn.ReLU(), nn.Conv2d(6, 6, 3), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 4 * 4, 4)
        )
        .double()
        .eval()
    )
    shift = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64)
    net_b = copy.deepcopy(net_a)
    with torch.no_grad():
        net_b[0].bias += (net_b[0].weight * shift[None, :, None, None]).sum((1, 2, 3))
    return net_a, net_b, shift[None, :, None, None]


def test_flat_input_layer_makes_maps_invariant_to_a_compensated_input_shift():
    # Eqs. 2.63-2.64 (L997-L1027): with the flat rule at the input, A(x) and B(x - m) share maps.
    net_a, net_b, shift = _shifted_pair()
    x = inputs((2, 3, 8, 8), seed=8)
    map_a, logits_a = attribute(net_a, x, 2, THESIS)
    map_b, logits_b = attribute(net_b, x - shift, 2, THESIS)
    assert relative_error(logits_b, logits_a) <= 1e-12
    assert relative_error(map_b, map_a) <= 1e-10


def test_epsilon_input_layer_is_not_shift_invariant():
    # The counterpart of the test above: with the epsilon rule the maps differ (Eq. 2.63).
    net_a, net_b, shift = _shifted_pair()
    x = inputs((2, 3, 8, 8), seed=8)
    map_a, _ = attribute(net_a, x, 2, EPSILON)
    map_b, _ = attribute(net_b, x - shift, 2, EPSILON)
    assert relative_error(map_b, map_a) > 1e-2
