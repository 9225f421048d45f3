"""The computation graph of a model, as a ``torch.fx.Graph`` over the model's module paths.

A (nested) ``nn.Sequential`` of leaf modules is read straight from its module tree. Any
other model is traced once with ``torch.fx.symbolic_trace``, which records ``+`` and
``torch.cat`` (residual and concat graphs). Tracing patches ``nn.Module.__call__``
process-wide for a few milliseconds, so traces are cached per model and serialised by a
lock: make the first call for a non-Sequential model before other threads use it.
"""

from __future__ import annotations

import threading
import weakref

import torch.fx
from torch import nn

from spray.errors import SprayError

_traced: "weakref.WeakKeyDictionary[nn.Module, tuple[tuple, torch.fx.Graph]]" = (
    weakref.WeakKeyDictionary()
)
_trace_lock = threading.Lock()


def model_graph(model: nn.Module) -> torch.fx.Graph:
    """The graph whose nodes name the model's submodules by their dotted paths."""
    chain = _sequential_chain(model, "")
    if chain is not None:
        return _chain_graph(chain)
    return _cached_trace(model)


def _sequential_chain(module: nn.Module, prefix: str) -> list[str] | None:
    """Paths of the leaf modules of a nested Sequential in call order, else None."""
    if not isinstance(module, nn.Sequential):
        return [prefix] if prefix and not list(module.children()) else None
    paths: list[str] = []
    for name, child in module.named_children():
        sub = _sequential_chain(child, f"{prefix}.{name}" if prefix else name)
        if sub is None:
            return None
        paths.extend(sub)
    return paths


def _chain_graph(paths: list[str]) -> torch.fx.Graph:
    graph = torch.fx.Graph()
    value = graph.placeholder("x")
    for path in paths:
        value = graph.call_module(path, (value,))
    graph.output(value)
    return graph


def _structure(model: nn.Module) -> tuple:
    return tuple((name, type(module)) for name, module in model.named_modules())


def _cached_trace(model: nn.Module) -> torch.fx.Graph:
    with _trace_lock:
        structure = _structure(model)
        cached = _traced.get(model)
        if cached is not None and cached[0] == structure:
            return cached[1]
        try:
            graph = torch.fx.Tracer().trace(model)
        except Exception as error:  # fx raises many types for data-dependent control flow
            raise SprayError(
                f"the model {type(model).__name__} cannot be traced by torch.fx ({error}); "
                "remove data-dependent control flow from its forward or pass an nn.Sequential."
            ) from error
        _traced[model] = (structure, graph)
        return graph
