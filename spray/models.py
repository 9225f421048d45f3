"""Loading the classifier to explain: the built-in demo model or a user's own.

A user model is ``package.module:factory`` or ``path/to/file.py:factory`` (a callable that
returns an ``nn.Module``), optional weights (a state_dict read with
``torch.load(..., weights_only=True)``, so a checkpoint cannot run code) and class names
(a list, or a file with one name per line). Every way this can go wrong raises
:class:`spray.errors.ModelError` with one sentence naming the input and the fix.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import pickle
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from spray.errors import ModelError
from spray.preprocess import Preprocessing


@dataclass
class LoadedModel:
    """A model ready to explain: module in eval mode, class names per output, its preprocessing.

    ``spec`` is JSON such that ``load_model(**spec)`` rebuilds the same model in another
    process (a Dask worker); ``fingerprint`` hashes architecture and weights (the store key).
    """

    module: nn.Module
    class_names: list[str]
    preprocessing: Preprocessing
    fingerprint: str
    spec: dict[str, Any] = field(default_factory=dict)


def model_fingerprint(module: nn.Module) -> str:
    """Hex digest of the architecture (``repr``) and every parameter and buffer (names, dtypes, bytes)."""
    digest = hashlib.sha256(repr(module).encode())
    for name, tensor in module.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()[:16]


def load_model(
    model: str | None = None,
    weights: str | Path | None = None,
    classes: str | Path | Sequence[str] | None = None,
    preprocessing: dict[str, Any] | Preprocessing | None = None,
) -> LoadedModel:
    """The demo model (``model=None``) or a user model; see the module docstring.

    ``preprocessing`` defaults to the demo model's own, or to the thesis pipeline
    (256, edge, 227; L2141) for a user model.
    """
    if model is None:
        if weights is not None or classes is not None:
            raise ModelError("--weights and --classes need --model; leave all three out to use the demo model")
        return _load_demo(preprocessing)
    module = _call_factory(model)
    if weights is not None:
        _load_weights(module, Path(weights))
    module.eval()
    class_names = _class_names(classes, model)
    prep = _as_preprocessing(preprocessing) or Preprocessing()
    _check_output_width(module, len(class_names), prep, model)
    spec = {
        "model": _portable(model),
        "weights": str(Path(weights).resolve()) if weights is not None else None,
        "classes": class_names,
        "preprocessing": prep.to_dict(),
    }
    return LoadedModel(module, class_names, prep, model_fingerprint(module), spec)


def _as_preprocessing(value: dict[str, Any] | Preprocessing | None) -> Preprocessing | None:
    return Preprocessing.from_dict(value) if isinstance(value, dict) else value


def _load_demo(preprocessing: dict[str, Any] | Preprocessing | None) -> LoadedModel:
    from spray.demo.model import load_demo_network, read_config

    config = read_config()
    module = load_demo_network()
    prep = _as_preprocessing(preprocessing) or Preprocessing.from_dict(config["preprocessing"])
    spec = {"model": None, "weights": None, "classes": None, "preprocessing": prep.to_dict()}
    return LoadedModel(module, list(config["class_names"]), prep, model_fingerprint(module), spec)


def _portable(model: str) -> str:
    """``file.py:factory`` with an absolute path, so a worker in another directory finds it."""
    location, _, factory = model.rpartition(":")
    return f"{Path(location).resolve()}:{factory}" if location.endswith(".py") else model


def _call_factory(model: str) -> nn.Module:
    location, sep, factory_name = model.rpartition(":")
    if not sep or not location or not factory_name:
        raise ModelError(f"model {model!r} must look like package.module:factory or path/to/file.py:factory")
    try:
        if location.endswith(".py"):
            path = Path(location).resolve()
            if not path.is_file():
                raise FileNotFoundError(f"no file {path}")
            name = "spray_user_model_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
            spec = importlib.util.spec_from_file_location(name, path)
            code = importlib.util.module_from_spec(spec)
            sys.modules[name] = code
            spec.loader.exec_module(code)
        else:
            code = importlib.import_module(location)
        factory = getattr(code, factory_name)
    except Exception as error:  # any failure to import is the user's to fix; say which
        raise ModelError(
            f"cannot import model factory {model!r} ({type(error).__name__}: {error}); "
            "check the module path or file and the factory name"
        ) from None
    try:
        module = factory()
    except Exception as error:
        raise ModelError(f"model factory {model!r} failed when called ({type(error).__name__}: {error})") from None
    if not isinstance(module, nn.Module):
        raise ModelError(f"model factory {model!r} returned {type(module).__name__}, not a torch.nn.Module")
    return module


def _load_weights(module: nn.Module, path: Path) -> None:
    if not path.is_file():
        raise ModelError(f"weights file {path} does not exist; give a state_dict saved with torch.save")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        reason = re.search(r"WeightsUnpickler error: ([^\n]{1,120}?)(?: was not an allowed|\n|$)", str(error))
        raise ModelError(
            f"weights file {path} holds more than tensors, so it was not loaded "
            f"(weights_only refused it: {reason.group(1) if reason else 'unsafe pickle'}); "
            "re-save it with torch.save(model.state_dict(), path)"
        ) from None
    except Exception as error:
        raise ModelError(f"weights file {path} cannot be read by torch.load ({type(error).__name__}: {error})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelError(f"weights file {path} holds a {type(state).__name__}, not a state_dict of tensors")
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or wrong_shape:
        parts = [
            f"{label} {', '.join(items[:3])}{' ...' if len(items) > 3 else ''}"
            for label, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shapes", wrong_shape))
            if items
        ]
        raise ModelError(f"weights {path} do not fit the model ({'; '.join(parts)}); use the matching architecture")
    module.load_state_dict(state)


def _class_names(classes: str | Path | Sequence[str] | None, model: str) -> list[str]:
    if classes is None:
        raise ModelError(f"model {model!r} needs class names: pass --classes FILE (one per line) or the dataset's")
    if isinstance(classes, (str, Path)):
        path = Path(classes)
        if not path.is_file():
            raise ModelError(f"classes file {path} does not exist; write one class name per line, in output order")
        names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    else:
        names = [str(name) for name in classes]
    if not names:
        raise ModelError(f"no class names given for model {model!r}; the classes file or list is empty")
    return names


def _check_output_width(module: nn.Module, n_classes: int, prep: Preprocessing, model: str) -> None:
    probe = torch.zeros(1, 3, prep.crop_size, prep.crop_size)
    try:
        with torch.no_grad():
            output = module(probe)
    except Exception as error:
        raise ModelError(
            f"model {model!r} fails on a {tuple(probe.shape)} input ({type(error).__name__}: {error}); "
            "set the preprocessing crop size to the model's input size"
        ) from None
    width = output.shape[-1] if output.ndim == 2 else None
    if width != n_classes:
        raise ModelError(
            f"model {model!r} has {width if width is not None else tuple(output.shape)} outputs but "
            f"{n_classes} class names were given; give one class name per output"
        )
