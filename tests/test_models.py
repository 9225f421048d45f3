"""Model loading: factories, safe weights, class names, width checks, fingerprints, specs."""

import textwrap

import numpy as np
import pytest
import torch
from torch import nn

from spray.errors import ModelError
from spray.models import load_model, model_fingerprint

FACTORY = textwrap.dedent(
    """
    import torch
    from torch import nn

    def tiny():
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 3))

    def broken():
        raise RuntimeError("boom")
    """
)
SMALL = {"resize_to": 16, "input_size": 16}


@pytest.fixture
def factory_file(tmp_path):
    path = tmp_path / "my_model.py"
    path.write_text(FACTORY)
    return path


@pytest.fixture
def weights(tmp_path, factory_file):
    namespace = {}
    exec(FACTORY, namespace)
    model = namespace["tiny"]()
    for parameter in model.parameters():
        nn.init.constant_(parameter, 0.5)
    path = tmp_path / "w.pt"
    torch.save(model.state_dict(), path)
    return path


def test_file_factory_with_weights_and_classes_file(tmp_path, factory_file, weights):
    classes = tmp_path / "classes.txt"
    classes.write_text("a\nb\n\nc\n")
    loaded = load_model(f"{factory_file}:tiny", weights, classes, preprocessing=SMALL)
    assert loaded.class_names == ["a", "b", "c"]
    assert not loaded.module.training
    assert all((p == 0.5).all() for p in loaded.module.parameters())
    assert loaded.preprocessing.crop_size == 16


def test_spec_reloads_the_same_model_elsewhere(factory_file, weights, monkeypatch, tmp_path):
    loaded = load_model(f"{factory_file}:tiny", weights, ["a", "b", "c"], preprocessing=SMALL)
    monkeypatch.chdir(tmp_path.parent)  # a worker runs in another directory
    again = load_model(**loaded.spec)
    assert again.fingerprint == loaded.fingerprint and again.class_names == loaded.class_names
    assert again.preprocessing == loaded.preprocessing


def test_package_module_factory(monkeypatch, factory_file):
    monkeypatch.syspath_prepend(str(factory_file.parent))
    loaded = load_model("my_model:tiny", classes=["a", "b", "c"], preprocessing=SMALL)
    assert isinstance(loaded.module, nn.Sequential)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("no_such_package_xyz.models:net", "cannot import model factory"),
        ("{file}:missing", "cannot import model factory"),
        ("{file}:broken", "failed when called"),
        ("/no/such/file.py:net", "cannot import model factory"),
        ("just_a_name", "package.module:factory"),
    ],
)
def test_bad_factories_are_clear_errors(factory_file, spec, message):
    with pytest.raises(ModelError, match=message):
        load_model(spec.format(file=factory_file), classes=["a", "b", "c"], preprocessing=SMALL)


def test_weights_that_do_not_fit_name_the_keys(tmp_path, factory_file):
    path = tmp_path / "other.pt"
    torch.save(nn.Sequential(nn.Linear(4, 3)).state_dict(), path)
    with pytest.raises(ModelError, match=r"do not fit the model \(missing keys 4.weight, 4.bias; shapes 0.weight"):
        load_model(f"{factory_file}:tiny", path, ["a", "b", "c"], preprocessing=SMALL)


def test_output_width_must_match_the_classes(factory_file):
    with pytest.raises(ModelError, match="3 outputs but 2 class names"):
        load_model(f"{factory_file}:tiny", classes=["a", "b"], preprocessing=SMALL)


def test_unsafe_pickle_is_refused(tmp_path, factory_file):
    path = tmp_path / "evil.pt"
    torch.save({"0.weight": torch.zeros(1), "hook": Exception("arbitrary object")}, path)
    # The refused global names how the Exception was pickled: builtins, or tblib's reducer once
    # dask.distributed (which installs it process-wide) has been imported.
    with pytest.raises(ModelError, match=r"holds more than tensors \(it refers to [\w.]+\), so it was not loaded"):
        load_model(f"{factory_file}:tiny", path, ["a", "b", "c"], preprocessing=SMALL)


def test_random_bytes_are_not_called_an_unsafe_pickle(tmp_path, factory_file):
    path = tmp_path / "noise.pt"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ModelError, match=r"is not a PyTorch checkpoint torch.load can read"):
        load_model(f"{factory_file}:tiny", path, ["a", "b", "c"], preprocessing=SMALL)


def test_classes_are_required_for_a_user_model(factory_file):
    with pytest.raises(ModelError, match="needs class names: pass --class-names FILE"):
        load_model(f"{factory_file}:tiny", preprocessing=SMALL)
    with pytest.raises(ModelError, match=r"class name\(s\) a appear twice"):
        load_model(f"{factory_file}:tiny", classes=["a", "b", "a"], preprocessing=SMALL)


def test_fingerprint_tracks_weights_and_architecture():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2))
    same = nn.Sequential(nn.Linear(3, 2))
    same.load_state_dict(model.state_dict())
    assert model_fingerprint(model) == model_fingerprint(same)
    with torch.no_grad():
        same[0].bias[0] += 1e-6
    assert model_fingerprint(model) != model_fingerprint(same)
    relu = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
    relu.load_state_dict(model.state_dict())
    assert model_fingerprint(relu) != model_fingerprint(model)


def test_default_is_the_demo_model_with_its_classes_and_preprocessing():
    from spray.demo.world import CLASSES

    loaded = load_model()
    assert loaded.class_names == CLASSES
    assert loaded.preprocessing.pad_mode == "edge" and loaded.preprocessing.crop_size == 64
    x = torch.zeros(2, 3, 64, 64)
    assert loaded.module(x).shape == (2, len(CLASSES))
    assert load_model(**loaded.spec).fingerprint == loaded.fingerprint


INPUT_MODELS = textwrap.dedent(
    """
    import torch
    from torch import nn

    def grey_cnn():
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))

    def mlp28():
        torch.manual_seed(0)
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 3))

    def fixed32():
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 32 * 32, 3))
    """
)


@pytest.fixture
def input_models(tmp_path):
    path = tmp_path / "input_models.py"
    path.write_text(INPUT_MODELS)
    return path


def test_channels_auto_reads_the_first_layer(input_models):
    loaded = load_model(f"{input_models}:grey_cnn", classes=["a", "b", "c"], preprocessing={"input_size": 16})
    assert loaded.preprocessing.channels == "grey" and len(loaded.preprocessing.mean) == 1
    assert load_model(**loaded.spec).preprocessing == loaded.preprocessing  # the spec holds the resolved pipeline


def test_a_model_that_fails_on_the_input_gets_the_flags_and_the_size_that_fits(input_models):
    with pytest.raises(
        ModelError,
        match=r"fails on a \(1, 3, 227, 227\) input .*Linear of 784 inputs = 1 x 28 x 28: "
        r"pass --input-size 28 --channels grey \(or --preprocessing native",
    ):
        load_model(f"{input_models}:mlp28", classes=["a", "b", "c"])
    loaded = load_model(
        f"{input_models}:mlp28",
        classes=["a", "b", "c"],
        preprocessing={"preset": "native", "input_size": 28, "channels": "grey"},
    )
    assert loaded.preprocessing.input_size == 28
    with pytest.raises(
        ModelError, match=r"first layer takes 3 channel\(s\), the pipeline gives 1: pass --channels rgb"
    ):
        load_model(
            f"{input_models}:fixed32", classes=["a", "b", "c"], preprocessing={"input_size": 32, "channels": "grey"}
        )
    with pytest.raises(ModelError, match=r"--preprocessing thesis|torchvision|native, --input-size N"):
        load_model(f"{input_models}:fixed32", classes=["a", "b", "c"], preprocessing={"input_size": 30})


def test_a_pipeline_without_a_fixed_size_waits_for_the_images(input_models):
    loaded = load_model(f"{input_models}:fixed32", classes=["a", "b", "c"], preprocessing={"preset": "native"})
    assert loaded.preprocessing.input_size is None  # checked on the first image by the compute step


def test_fingerprint_of_a_batch_norm_model_reads_its_scalar_buffers():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 2, 3), nn.BatchNorm2d(2))  # num_batches_tracked is a 0-dim tensor
    before = model_fingerprint(model)
    model[1].num_batches_tracked += 1
    assert model_fingerprint(model) != before
