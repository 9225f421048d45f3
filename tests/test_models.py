"""Model loading: factories, safe weights, class names, width checks, fingerprints, specs."""

import textwrap

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
SMALL = {"longest_side": 16, "crop_size": 16}


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
    with pytest.raises(ModelError, match=r"holds more than tensors.*weights_only refused it: Unsupported global"):
        load_model(f"{factory_file}:tiny", path, ["a", "b", "c"], preprocessing=SMALL)


def test_classes_are_required_for_a_user_model(factory_file):
    with pytest.raises(ModelError, match="--classes"):
        load_model(f"{factory_file}:tiny", preprocessing=SMALL)


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
