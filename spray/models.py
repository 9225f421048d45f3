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
import math
import pickle
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from spray.errors import ModelError, SprayError
from spray.preprocess import PRESETS, Preprocessing, resolve_preprocessing


@dataclass
class LoadedModel:
    """A model ready to explain: module in eval mode, class names per output, its preprocessing.

    ``spec`` is JSON such that ``load_model(**spec)`` rebuilds the same model in another
    process (a Dask worker) with the same resolved preprocessing; ``fingerprint`` hashes
    architecture and weights (the store key).
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
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()[:16]


def load_model(
    model: str | None = None,
    weights: str | Path | None = None,
    classes: str | Path | Sequence[str] | None = None,
    preprocessing: Mapping[str, Any] | Preprocessing | None = None,
) -> LoadedModel:
    """The demo model (``model=None``) or a user model; see the module docstring.

    ``preprocessing`` is a resolved :class:`Preprocessing` (or its record, as in a spec) or a
    request: a preset and/or steps (``spray.preprocess.resolve_preprocessing``). Unset steps
    come from the demo model's own pipeline, or from the ``thesis`` preset (256, edge, 227;
    L2141) for a user model; ``channels`` defaults to ``auto``, the model's input channels.
    """
    if model is None:
        if weights is not None:
            raise ModelError("--weights needs --model; leave both out to use the built-in demo model")
        module, names, base = _load_demo()
        name = "the demo model"
        if classes is not None and _class_names(classes, name) != names:
            raise ModelError(
                "the demo model's outputs are " + ", ".join(names) + "; leave --class-names out for the demo model"
            )
    else:
        module = _call_factory(model)
        if weights is not None:
            _load_weights(module, Path(weights))
        module.eval()
        name = f"model {model!r}"
        names, base = _class_names(classes, name), PRESETS["thesis"]
    prep = (
        preprocessing
        if isinstance(preprocessing, Preprocessing)
        else resolve_preprocessing(preprocessing, base, input_channels(module))
    )
    check_model_input(module, prep, len(names), name)
    spec = {
        "model": None if model is None else _portable(model),
        "weights": str(Path(weights).resolve()) if weights is not None else None,
        "classes": None if model is None else names,
        "preprocessing": prep.to_dict(),
    }
    return LoadedModel(module, names, prep, model_fingerprint(module), spec)


def _load_demo() -> tuple[nn.Module, list[str], Preprocessing]:
    from spray.demo.model import load_demo_network, read_config

    config = read_config()
    return load_demo_network(), list(config["class_names"]), Preprocessing.from_dict(config["preprocessing"])


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
            if spec is None or spec.loader is None:
                raise ImportError(f"{path} cannot be loaded as a Python module")
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
        refused = re.search(r"unsupported GLOBAL ([^\s]+)|Unsupported global: GLOBAL ([^\s]+)", str(error))
        if refused is None:  # not a pickle torch.load can parse at all (random bytes, another format)
            raise ModelError(
                f"weights file {path} is not a PyTorch checkpoint torch.load can read; give a "
                "state_dict saved with torch.save(model.state_dict(), path)"
            ) from None
        raise ModelError(
            f"weights file {path} holds more than tensors (it refers to {refused.group(1) or refused.group(2)}), "
            "so it was not loaded: weights are read with weights_only=True; re-save them with "
            "torch.save(model.state_dict(), path)"
        ) from None
    except Exception as error:
        raise ModelError(
            f"weights file {path} cannot be read by torch.load ({type(error).__name__}: {error})"
        ) from None
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
        raise ModelError(f"{model} needs class names: pass --class-names FILE (one per line, in output order)")
    if isinstance(classes, (str, Path)):
        path = Path(classes)
        if not path.is_file():
            raise ModelError(f"class names file {path} does not exist; write one class name per line, in output order")
        names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    else:
        names = [str(name) for name in classes]
    if not names:
        raise ModelError(f"no class names given for {model}; the class names file or list is empty")
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ModelError(
            f"class name(s) {', '.join(twice)} appear twice in the class names of {model}; "
            "give each output its own name"
        )
    return names


def first_layer(module: nn.Module) -> nn.Module | None:
    """The first Conv2d or Linear the input reaches (graph order; module order if untraceable)."""
    from spray.lrp.graph import model_graph

    try:
        nodes = model_graph(module).graph.nodes
        candidates = [module.get_submodule(node.target) for node in nodes if node.op == "call_module"]
    except SprayError:
        candidates = list(module.modules())
    return next((m for m in candidates if isinstance(m, (nn.Conv2d, nn.Linear))), None)


def input_channels(module: nn.Module) -> int | None:
    """Channels the model takes, from its first convolution (None when it starts with a dense layer)."""
    layer = first_layer(module)
    return layer.in_channels if isinstance(layer, nn.Conv2d) else None


def _input_hint(module: nn.Module, prep: Preprocessing) -> str:
    """What the first layer says about the input the model wants, as flags to pass."""
    layer = first_layer(module)
    if isinstance(layer, nn.Conv2d) and layer.in_channels != prep.n_channels:
        flag = {1: "grey", 3: "rgb"}.get(layer.in_channels)
        fix = f"pass --channels {flag} (or --channels auto)" if flag else "spray reads grey or RGB images only"
        return f"its first layer takes {layer.in_channels} channel(s), the pipeline gives {prep.n_channels}: {fix}"
    if isinstance(layer, nn.Linear):
        for channels, name in ((1, "grey"), (3, "rgb")):
            side = math.isqrt(layer.in_features // channels)
            if side * side * channels == layer.in_features:
                return (
                    f"its first layer is a Linear of {layer.in_features} inputs = {channels} x {side} x {side}: "
                    f"pass --input-size {side} --channels {name} (or --preprocessing native if the images are "
                    f"{side}x{side} already)"
                )
    return (
        "set the model's input with --preprocessing thesis|torchvision|native, --input-size N, --channels "
        "grey|rgb|auto (see `spray run --help`)"
    )


def check_model_input(
    module: nn.Module, prep: Preprocessing, n_classes: int, model: str, size: int | None = None
) -> None:
    """Run the model once on a zero input of the pipeline's shape: it must accept it and give
    one logit per class name. ``size`` is the input side when the pipeline does not fix it
    (``native``: the images' own size); without either the check waits for the first image."""
    size = prep.input_size or size
    if size is None:
        return
    probe = torch.zeros(1, prep.n_channels, size, size, device=_device_of(module))
    try:
        with torch.no_grad():
            output = module(probe)
    except Exception as error:
        raise ModelError(
            f"{model} fails on a {tuple(probe.shape)} input ({type(error).__name__}: {str(error)[:160]}); "
            f"{_input_hint(module, prep)}"
        ) from None
    width = output.shape[-1] if output.ndim == 2 else None
    if width != n_classes:
        raise ModelError(
            f"{model} has {width if width is not None else tuple(output.shape)} outputs but "
            f"{n_classes} class names were given; give one class name per output (--class-names FILE)"
        )


def _device_of(module: nn.Module) -> torch.device:
    parameter = next(module.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")
