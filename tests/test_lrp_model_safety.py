"""The engine leaves the user's model alone and behaves the same however it is called."""

from __future__ import annotations

import threading

import pytest
import torch
from lrp_models import (
    conv_bn_net,
    conv_net,
    convnext_net,
    inputs,
    mbconv_net,
    relative_error,
    residual_concat_net,
    resnet_style,
    shuffle_net,
)
from torch import nn

import spray
from spray.errors import SprayError, UnsupportedLayerError
from spray.lrp import (
    AlphaBeta,
    Basic,
    Composite,
    attribute,
    attribute_layers,
    conditional_relevance,
    explainable_layers,
)


def _hooks(model: nn.Module) -> int:
    return sum(
        len(m._forward_hooks)
        + len(m._backward_hooks)
        + len(m._forward_pre_hooks)
        + len(getattr(m, "_backward_pre_hooks", {}))
        for m in model.modules()
    )


@pytest.mark.parametrize("build", [conv_bn_net, residual_concat_net])
def test_model_is_unchanged_and_unhooked(build):
    model = build()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    attribute(model, inputs((2, 3, 8, 8)), 1)
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[key], after[key]) for key in before)
    assert _hooks(model) == 0
    assert all(p.grad is None for p in model.parameters())
    assert not model.training


def test_public_name_is_reexported():
    assert spray.attribute is attribute


@pytest.mark.parametrize("build, shape", [(conv_net, (4, 3, 16, 16)), (residual_concat_net, (4, 3, 8, 8))])
def test_a_batch_gives_the_maps_of_single_calls(build, shape):
    model, x = build(), inputs(shape)
    targets = torch.tensor([0, 3, 1, 3])
    batch, logits = attribute(model, x, targets)
    for i in range(len(x)):
        single, single_logits = attribute(model, x[i : i + 1], int(targets[i]))
        assert relative_error(single[0], batch[i]) <= 1e-12
        assert relative_error(single_logits[0], logits[i]) <= 1e-12


@pytest.mark.parametrize("build, shape", [(conv_net, (2, 3, 16, 16)), (residual_concat_net, (2, 3, 8, 8))])
def test_threads_explaining_and_running_the_same_model_match_serial_runs(build, shape):
    model = build()
    x_explain, x_forward = inputs(shape, seed=1), inputs(shape, seed=2)
    # The first call of a non-Sequential model traces it (see spray.lrp.graph); do it serially.
    serial_map, _ = attribute(model, x_explain, 1)
    with torch.no_grad():
        serial_out = model(x_forward)
    maps, outs, errors = [], [], []

    def explain():
        try:
            maps.extend(attribute(model, x_explain, 1)[0] for _ in range(15))
        except Exception as error:  # surfaced by the assertion below
            errors.append(error)

    def run_forwards():
        try:
            with torch.no_grad():
                outs.extend(model(x_forward) for _ in range(60))
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=explain), threading.Thread(target=run_forwards)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert all(torch.allclose(m, serial_map, rtol=0, atol=1e-13) for m in maps) and len(maps) == 15
    assert all(torch.equal(o, serial_out) for o in outs) and len(outs) == 60


def test_works_under_no_grad():
    model, x = conv_net(), inputs((2, 3, 16, 16))
    expected, _ = attribute(model, x, 2)
    with torch.no_grad():
        relevance, _ = attribute(model, x, 2)
    assert torch.equal(relevance, expected)


def test_float32_matches_float64():
    model, x = residual_concat_net(), inputs((2, 3, 8, 8))
    expected, logits64 = attribute(model, x, 0)
    relevance, logits32 = attribute(model.float(), x.float(), 0)
    assert relevance.dtype == torch.float32
    assert relative_error(relevance.double(), expected) <= 1e-4
    assert relative_error(logits32.double(), logits64) <= 1e-5


def test_residual_concat_model_returns_its_logits_and_a_finite_map():
    model, x = residual_concat_net(), inputs((3, 3, 8, 8))
    relevance, logits = attribute(model, x, 4)
    with torch.no_grad():
        assert relative_error(logits, model(x)) <= 1e-12
    assert relevance.shape == x.shape and torch.isfinite(relevance).all()
    assert relevance.abs().max() > 0


def test_training_mode_model_is_explained_with_inference_semantics():
    model, x = conv_bn_net(), inputs((2, 3, 8, 8))
    expected, _ = attribute(model, x, 1)
    model.train()
    relevance, _ = attribute(model, x, 1)
    assert model.training and torch.equal(relevance, expected)


def test_in_place_relu_gives_the_same_maps():
    model, x = conv_net(), inputs((2, 3, 16, 16))
    expected, _ = attribute(model, x, 2)
    for module in model:
        if isinstance(module, nn.ReLU):
            module.inplace = True
    relevance, _ = attribute(model, x, 2)
    assert torch.equal(relevance, expected)


class _SoftmaxHead(nn.Module):
    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x):
        return torch.softmax(self.body(x), dim=1)


@pytest.mark.parametrize("wrap", [lambda m: nn.Sequential(m, nn.Softmax(dim=1)), _SoftmaxHead])
def test_softmax_ended_model_warns_and_explains_its_logits(wrap):
    body, x = conv_net(), inputs((2, 3, 16, 16))
    expected, expected_logits = attribute(body, x, 3)
    with pytest.warns(UserWarning, match="logits"):
        relevance, logits = attribute(wrap(body), x, 3)
    assert torch.equal(relevance, expected) and torch.equal(logits, expected_logits)


def test_unsupported_layer_error_names_its_path_and_type():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.Sequential(nn.ReLU(), nn.LocalResponseNorm(2)), nn.Flatten(), nn.LazyLinear(2)
    )
    with pytest.raises(UnsupportedLayerError, match=r"'1\.1'.*LocalResponseNorm"):
        attribute(model, torch.randn(1, 3, 8, 8), 0)


@pytest.mark.parametrize("target", [7, torch.tensor([0, 1, 2]), -1])
def test_bad_target_raises_a_spray_error(target):
    with pytest.raises(SprayError, match="target"):
        attribute(conv_net(), inputs((2, 3, 16, 16)), target)


def test_bad_composite_and_literature_beta_raise_spray_errors():
    with pytest.raises(SprayError, match="composite"):
        attribute(conv_net(), inputs((1, 3, 16, 16)), 0, "zennit")
    with pytest.raises(SprayError, match="beta=-1"):
        AlphaBeta(alpha=2.0, beta=1.0)


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
CUDA_MODELS = {
    "residual_concat": (residual_concat_net, (2, 3, 8, 8), "stem"),
    "mbconv_se": (mbconv_net, (2, 3, 8, 8), "blocks.0"),
    "convnext": (convnext_net, (2, 3, 16, 16), "features.1"),
    "shufflenet": (shuffle_net, (2, 3, 16, 16), "stage2.0"),
    "resnet": (resnet_style, (2, 3, 16, 16), "layer1"),
}


@pytest.fixture
def no_tf32():
    """Float32 convolutions and matmuls in full precision (cuDNN defaults to TF32)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@needs_cuda
@pytest.mark.parametrize("name", list(CUDA_MODELS))
def test_cuda_matches_cpu(name):
    build, shape, _ = CUDA_MODELS[name]
    model, x = build(), inputs(shape)
    x[..., 1:6, 1:6] = x[..., 1:2, 1:2]  # ties for the max pools
    expected, _ = attribute(model, x, 1)
    relevance, _ = attribute(model.cuda(), x.cuda(), 1)
    assert relevance.device.type == "cuda"
    assert relative_error(relevance.cpu(), expected) <= 1e-10
    lrp0, _ = attribute(model, x.cuda(), 1, Composite.uniform(Basic()))
    assert torch.isfinite(lrp0).all()


@needs_cuda
@pytest.mark.parametrize("name", list(CUDA_MODELS))
def test_cuda_float32_layers_and_conditional_relevance_match_cpu(name, no_tf32):
    build, shape, layer = CUDA_MODELS[name]
    model, x = build(), inputs(shape)
    expected = attribute_layers(model, x, 2, [layer])
    channels = [0, 1]
    expected_conditional, _ = conditional_relevance(model, x, 2, layer, channels)
    model, x = model.float().cuda(), x.float().cuda()
    found = attribute_layers(model, x, torch.tensor([2, 2], device="cuda"), [layer])
    conditional, _ = conditional_relevance(model, x, 2, layer, channels)
    weights = torch.zeros(2, expected.layers[layer].shape[1])
    weights[:, channels] = 1
    per_sample, _ = conditional_relevance(model, x, 2, layer, weights)
    assert found.relevance.dtype == torch.float32 and found.relevance.device.type == "cuda"
    assert relative_error(found.relevance.double().cpu(), expected.relevance) <= 1e-4
    assert relative_error(found.layers[layer].double().cpu(), expected.layers[layer]) <= 1e-4
    assert relative_error(conditional.double().cpu(), expected_conditional) <= 1e-4
    assert torch.equal(per_sample, conditional)
    assert dict(explainable_layers(model, shape[1:]))[layer] == tuple(expected.layers[layer].shape[1:])
