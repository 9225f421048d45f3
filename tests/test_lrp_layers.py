"""Relevance at inner layers (issue 18): reading it by module path, conditioning on channels
(Concept Relevance Propagation), listing the layers, and the errors for names that do not fit."""

from __future__ import annotations

import pytest
import torch
from lrp_models import conv_bn_net, conv_net, inputs, mbconv_net, relative_error, resnet_style
from lrp_reference import reference_lrp
from torch import nn

from spray.errors import SprayError
from spray.lrp import (
    THESIS,
    AlphaBeta,
    Composite,
    Epsilon,
    Flat,
    attribute,
    attribute_layers,
    conditional_relevance,
    explainable_layers,
)

COMPOSITES = {"thesis": THESIS, "custom": Composite(conv=AlphaBeta(3.0, -2.0), dense=Epsilon(0.5), first=Flat())}


@pytest.mark.parametrize("composite", list(COMPOSITES))
@pytest.mark.parametrize(
    "build, shape", [(conv_net, (2, 3, 16, 16)), (conv_bn_net, (2, 3, 8, 8))], ids=["conv", "conv_bn"]
)
def test_relevance_read_at_every_layer_matches_the_reference(build, shape, composite):
    model, x = build(seed=1), inputs(shape, seed=2)
    arriving: dict[str, torch.Tensor] = {}
    expected = reference_lrp(model, x, 3, COMPOSITES[composite], arriving)
    relevance, _, layers, _ = attribute_layers(model, x, 3, list(arriving), COMPOSITES[composite])
    assert relative_error(relevance, expected) <= 1e-10
    for name, at_layer in arriving.items():
        assert layers[name].shape == at_layer.shape
        assert relative_error(layers[name], at_layer) <= 1e-10, name


def test_reading_layers_leaves_the_input_map_unchanged():
    model, x = resnet_style(seed=1), inputs((2, 3, 16, 16), seed=2)
    plain, plain_logits = attribute(model, x, 1)
    relevance, logits, _, _ = attribute_layers(model, x, 1, ["layer1", "layer2.0.conv1", "maxpool"])
    assert torch.equal(relevance, plain) and torch.equal(logits, plain_logits)


@pytest.mark.parametrize(
    "build, shape, names",
    [
        (conv_net, (2, 3, 16, 16), ["0", "2", "5", "9", "12"]),
        (resnet_style, (2, 3, 16, 16), ["conv1", "maxpool", "layer1", "layer2.0", "avgpool", "fc"]),
    ],
    ids=["conv", "resnet"],
)
def test_layer_relevance_is_conserved_in_bias_free_nets(build, shape, names):
    # Eq. 2.5 (L495): with no bias to absorb any, each layer that cuts the graph (not one
    # inside a residual branch) holds the logit's relevance.
    model, x = build(seed=4, bias=False), inputs(shape, seed=5)
    relevance, logits, layers, _ = attribute_layers(model, x, 0, names, Composite.uniform(Epsilon(1e-12)))
    for name in ["input", *names]:
        totals = (relevance if name == "input" else layers[name]).flatten(1).sum(1)
        assert torch.all((totals - logits[:, 0]).abs() <= 1e-8 * logits[:, 0].abs()), name


def test_with_biases_a_layer_holds_the_input_relevance_plus_what_biases_absorb_below_it():
    # conv_net's first layer is a conv with bias: R(input) = R(conv output) - bias share,
    # and the bias share is the epsilon-rule's b_j / z_j R_j summed (Eq. 2.16).
    model, x = conv_net(seed=6), inputs((2, 3, 16, 16), seed=7)
    rule = Epsilon(1e-9)
    relevance, _, layers, _ = attribute_layers(model, x, 2, ["0"], Composite.uniform(rule))
    with torch.no_grad():
        z = model[0](x)
    bias_share = (model[0].bias[None, :, None, None] / z * layers["0"]).flatten(1).sum(1)
    absorbed = layers["0"].flatten(1).sum(1) - relevance.flatten(1).sum(1)
    assert torch.allclose(absorbed, bias_share, rtol=1e-6, atol=1e-9 * float(layers["0"].abs().sum()))


@pytest.mark.parametrize(
    "build, shape, layer, channels",
    [
        (conv_net, (2, 3, 16, 16), "3", 8),
        (resnet_style, (2, 3, 16, 16), "layer1", 8),
        (mbconv_net, (2, 3, 8, 8), "blocks.0.block.1", 16),
    ],
    ids=["conv", "resnet", "mbconv"],
)
def test_conditioning_on_all_channels_gives_the_plain_map(build, shape, layer, channels):
    model, x = build(seed=2), inputs(shape, seed=3)
    plain, _ = attribute(model, x, 1)
    conditioned, _ = conditional_relevance(model, x, 1, layer, range(channels))
    assert torch.equal(conditioned, plain)


@pytest.mark.parametrize(
    "build, shape, layer, channels",
    [
        (conv_net, (2, 3, 16, 16), "3", 8),
        (resnet_style, (2, 3, 16, 16), "layer2.0", 16),
    ],
    ids=["conv", "resnet"],
)
def test_maps_of_a_channel_partition_sum_to_the_plain_map(build, shape, layer, channels):
    # CRP is linear in the relevance at the layer (Achtibat et al. 2023, Eq. 6).
    model, x = build(seed=2), inputs(shape, seed=3)
    plain, _ = attribute(model, x, 4)
    parts = [list(range(0, channels, 3)), list(range(1, channels, 3)), list(range(2, channels, 3))]
    maps = [conditional_relevance(model, x, 4, layer, part)[0] for part in parts]
    assert relative_error(sum(maps), plain) <= 1e-12
    assert all(relative_error(m, plain) > 1e-3 for m in maps)  # each part alone is another map


def test_a_conditional_map_carries_its_channels_relevance_in_a_bias_free_net():
    model, x = resnet_style(seed=3, bias=False), inputs((2, 3, 16, 16), seed=4)
    rule = Composite.uniform(Epsilon(1e-12))
    _, _, layers, _ = attribute_layers(model, x, 1, ["layer1"], rule)
    conditioned, _ = conditional_relevance(model, x, 1, "layer1", [2, 5], rule)
    expected = layers["layer1"][:, [2, 5]].flatten(1).sum(1)
    assert torch.allclose(conditioned.flatten(1).sum(1), expected, rtol=1e-8, atol=0)


def test_per_sample_channel_weights_equal_per_sample_index_sets():
    model, x = conv_net(seed=5), inputs((2, 3, 16, 16), seed=6)
    weights = torch.zeros(2, 8)
    weights[0, [1, 4]] = 1
    weights[1, [2, 6]] = 1
    both, _ = conditional_relevance(model, x, 2, "3", weights)
    first, _ = conditional_relevance(model, x[:1], 2, "3", [1, 4])
    second, _ = conditional_relevance(model, x[1:], 2, "3", [2, 6])
    assert first.abs().max() > 0 and second.abs().max() > 0
    assert relative_error(both[0], first[0]) <= 1e-12
    assert relative_error(both[1], second[0]) <= 1e-12


def test_explainable_layers_lists_paths_and_output_shapes_in_module_order():
    layers = explainable_layers(resnet_style(), (3, 16, 16))
    paths = [path for path, _ in layers]
    assert dict(layers)["maxpool"] == (8, 4, 4)
    assert dict(layers)["layer2"] == (16, 2, 2)
    assert dict(layers)["fc"] == (5,)
    assert paths.index("layer1") < paths.index("layer1.0") < paths.index("layer2")
    assert "layer1.0.relu" not in paths  # one module called twice: no single output
    gates = [path for path, _ in explainable_layers(mbconv_net(), (3, 8, 8)) if ".block.2." in path]
    assert gates == []  # the SE gate branches receive no relevance


def test_an_unknown_layer_name_lists_near_names():
    model, x = resnet_style(), inputs((1, 3, 16, 16))
    with pytest.raises(SprayError, match=r"'layer2\.O' is not a module.*near names: .*layer2\.0"):
        attribute_layers(model, x, 0, ["layer2.O"])
    with pytest.raises(SprayError, match=r"'layr1' is not a module.*layer1"):
        conditional_relevance(model, x, 0, "layr1", [0])


def test_a_layer_after_the_classifier_head_is_refused():
    body = conv_net()
    model = nn.Sequential(*body, nn.Softmax(dim=1))
    with (
        pytest.warns(UserWarning, match="logits"),
        pytest.raises(SprayError, match=r"'13' comes after the explained logits"),
    ):
        attribute_layers(model, inputs((1, 3, 16, 16)), 0, ["13"])


class _WithUnusedBranch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten())
        self.aux = nn.Linear(4 * 14 * 14, 2)
        self.head = nn.Linear(4 * 14 * 14, 5)

    def forward(self, x):
        features = self.features(x)
        self.aux(features)  # computed, never returned
        return self.head(features)


@pytest.mark.parametrize(
    "model, name, message",
    [
        (_WithUnusedBranch().double(), "aux", r"'aux' does not feed the explained logits"),
        (resnet_style(), "layer1.0.relu", r"'layer1\.0\.relu' runs 2 times"),
    ],
    ids=["unused branch", "module run twice"],
)
def test_layers_without_a_single_output_on_the_logits_path_are_refused(model, name, message):
    with pytest.raises(SprayError, match=message):
        attribute_layers(model, inputs((1, 3, 16, 16)), 0, [name])


@pytest.mark.parametrize(
    "channels, message",
    [
        ([8], r"channels \[8\] are not in \[0, 8\)"),
        ([], r"channels \[\] are not in"),
        (torch.ones(3, 8), r"shape \(3, 8\), not \(batch, channels\) = \(2, 8\)"),
    ],
)
def test_bad_channels_are_refused(channels, message):
    with pytest.raises(SprayError, match=message):
        conditional_relevance(conv_net(), inputs((2, 3, 16, 16)), 0, "3", channels)


def test_the_layer_s_activations_come_with_its_relevance():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2)).eval()
    x = torch.randn(2, 3, 8, 8)
    result = attribute_layers(model, x, 1, ["1"])
    torch.testing.assert_close(result.activations["1"], model[1](model[0](x)))
    assert result.layers["1"].shape == result.activations["1"].shape
