"""Architectures users bring: SE gates, LayerNorm, layer scale, stochastic depth, channel
shuffle, chunk/split, shape arithmetic, BatchNorm + residual additions."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from lrp_models import convnext_net, inputs, mbconv_net, relative_error, resnet_style, shuffle_net
from lrp_reference import convnext_reference, mbconv_reference, resnet_reference, shuffle_reference
from torch import nn

from spray.errors import UnsupportedLayerError
from spray.lrp import THESIS, AlphaBeta, Basic, Composite, Epsilon, Flat, attribute, attribute_layers

COMPOSITES = {
    "thesis": THESIS,
    "custom": Composite(conv=AlphaBeta(1.5, -0.5), dense=Epsilon(0.1), first=Flat()),
    "lrp0": Composite.uniform(Basic()),
}


def _planted(shape, seed):
    """Inputs with a uniform square: the first max pool then meets ties that carry relevance."""
    x = inputs(shape, seed=seed)
    x[..., 2:12, 2:12] = x[..., 2:3, 2:3]
    return x


ARCHITECTURES = {
    "mbconv_se": (mbconv_net, (2, 3, 8, 8), mbconv_reference),
    "convnext": (convnext_net, (2, 3, 16, 16), None),
    "shufflenet": (shuffle_net, (2, 3, 16, 16), shuffle_reference),
    "resnet": (resnet_style, (2, 3, 16, 16), resnet_reference),
}


@pytest.mark.parametrize("composite", list(COMPOSITES))
@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_architectures_match_a_hand_walked_reference(name, composite):
    build, shape, reference = ARCHITECTURES[name]
    rules = COMPOSITES[composite]
    model, x = build(seed=1), _planted(shape, seed=2)
    if reference is None:  # ConvNeXt: the LN-rule's epsilon is the dense rule's
        epsilon = rules.dense.epsilon if isinstance(rules.dense, Epsilon) else 0.0
        expected, expected_logits = convnext_reference(model, x, 3, rules, epsilon)
    else:
        expected, expected_logits = reference(model, x, 3, rules)
    relevance, logits = attribute(model, x, 3, rules)
    assert relative_error(logits, expected_logits) <= 1e-12
    assert expected.abs().max() > 0
    assert relative_error(relevance, expected) <= 1e-10


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_bias_free_architectures_conserve_relevance(name):
    # Eq. 2.5 (L495): no biases, BatchNorm without shift, LayerNorm without bias and a
    # vanishing stabiliser: the input relevance sums to the logit. The SE gate holds none.
    build, shape, _ = ARCHITECTURES[name]
    model, x = build(seed=4, bias=False), inputs(shape, seed=5)
    relevance, logits = attribute(model, x, 2, Composite.uniform(Epsilon(1e-12)))
    totals = relevance.flatten(1).sum(1)
    assert torch.all((totals - logits[:, 2]).abs() <= 1e-8 * logits[:, 2].abs())


def test_squeeze_excitation_gate_branch_receives_no_relevance():
    model, x = mbconv_net(seed=3), inputs((2, 3, 8, 8), seed=4)
    se = "blocks.0.block.2"
    names = [f"{se}.avgpool", f"{se}.fc1", f"{se}.fc2", f"{se}.scale_activation", "blocks.0.block.1", se]
    _, _, layers, _ = attribute_layers(model, x, 1, names, THESIS)
    for gate_layer in names[:4]:
        assert torch.count_nonzero(layers[gate_layer]) == 0, gate_layer
    # the product y = gate * features hands each feature value its output's relevance
    assert layers[se].abs().max() > 0
    assert torch.equal(layers["blocks.0.block.1"], layers[se])


class _ClassicSE(nn.Module):
    """SENet's original block: the sigmoid gate reshaped and expanded to the features' size."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(channels, 2, bias=False), nn.ReLU(), nn.Linear(2, channels, bias=False), nn.Sigmoid()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, _, _ = x.size()
        y = self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1)).view(b, c, 1, 1)
        return x * y.expand_as(x)


class _HardGate(nn.Module):
    """A hand-written hard sigmoid (no sigmoid-like op): the broadcast operand is the gate."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc = nn.Conv2d(channels, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = F.relu6(self.fc(x.mean((2, 3), keepdim=True)) + 3.0) / 6.0
        return gate * x


class _SoftmaxGate(nn.Module):
    """Channel attention weights from a softmax (not element-wise: a rule only as a gate)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc = nn.Conv2d(channels, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.softmax(self.fc(x), dim=1)


@pytest.mark.parametrize("gate", [_ClassicSE, _HardGate, _SoftmaxGate])
def test_gate_is_found_through_shape_ops_or_by_broadcasting(gate):
    torch.manual_seed(0)
    model = (
        nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1, bias=False),
            nn.ReLU(),
            gate(6),
            nn.Flatten(),
            nn.Linear(6 * 16, 4, bias=False),
        )
        .double()
        .eval()
    )
    x = inputs((2, 3, 4, 4), seed=7)
    relevance, logits, layers, _ = attribute_layers(model, x, 1, ["2.fc", "1"], Composite.uniform(Epsilon(1e-12)))
    assert torch.count_nonzero(layers["2.fc"]) == 0
    assert torch.allclose(layers["1"].flatten(1).sum(1), logits[:, 1], rtol=1e-8, atol=0)
    assert torch.allclose(relevance.flatten(1).sum(1), logits[:, 1], rtol=1e-8, atol=0)


class _Bilinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.left, self.right = nn.Conv2d(3, 3, 1), nn.Conv2d(3, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.left(x) * self.right(x)


class _Net(nn.Module):
    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 3, 1), nn.Sequential(nn.ReLU(), block))
        self.head = nn.Linear(12, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


class _Attention(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(x, x.transpose(-1, -2))


@pytest.mark.parametrize(
    "block, message",
    [
        (_Bilinear(), r"'features\.1\.1 \(mul\)'.*operator\.mul of two input-dependent tensors"),
        (_Attention(), r"'features\.1\.1 \(matmul\)'.*torch\.matmul"),
        (nn.Sequential(nn.Identity(), nn.LocalResponseNorm(2)), r"'features\.1\.1\.1'.*LocalResponseNorm"),
        (nn.Sequential(nn.Identity(), nn.Softmax(dim=1)), r"'features\.1\.1\.1'.*softmax on the "),
    ],
    ids=["product without a gate", "function", "module", "softmax not as a gate"],
)
def test_unsupported_operations_are_named_by_their_module_path(block, message):
    with pytest.raises(UnsupportedLayerError, match=message):
        attribute(_Net(block), torch.randn(1, 3, 2, 2), 0)


class _ConvSubclass(nn.Conv2d):
    """A user subclass that keeps torch's forward: still one conv layer to the engine."""


def test_a_subclass_keeping_torchs_forward_is_explained_as_its_base_layer():
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16, 3)).double().eval()
    sub = nn.Sequential(_ConvSubclass(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16, 3)).double().eval()
    sub.load_state_dict(plain.state_dict())
    x = inputs((2, 3, 4, 4))
    assert torch.equal(attribute(sub, x, 0)[0], attribute(plain, x, 0)[0])
