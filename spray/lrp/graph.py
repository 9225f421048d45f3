"""The computation graph of a model, as a ``torch.fx.Graph`` over the model's module paths.

A (nested) ``nn.Sequential`` of leaf modules (see :func:`_is_leaf`) is read straight from
its module tree. Any other model (including a Sequential holding custom modules such as a
``LayerNorm2d`` subclass or a ``Permute``) is traced once with ``torch.fx``, which records
``+``, ``*``, ``torch.cat`` and shape arithmetic, and steps into every non-leaf module. Tracing patches ``nn.Module.__call__`` process-wide for a few
milliseconds, so traces are cached per model and serialised by a lock: make the first call
for a non-Sequential model before other threads use it.

Besides the graph, :class:`ModelGraph` knows which node is the output of each module (leaf
or container) in each of its calls, so relevance can be read at a module's output by name.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

import torch.fx
from torch import nn

from spray.errors import SprayError


@dataclass(frozen=True)
class ModelGraph:
    """A model's graph and, per module path, the node of its output in each call."""

    graph: torch.fx.Graph
    outputs: dict[str, tuple[torch.fx.Node, ...]]


_traced: weakref.WeakKeyDictionary[nn.Module, tuple[tuple, ModelGraph]] = weakref.WeakKeyDictionary()
_trace_lock = threading.Lock()


def model_graph(model: nn.Module) -> ModelGraph:
    """The graph whose nodes name the model's submodules by their dotted paths."""
    chain = _sequential_chain(model, "")
    if chain is not None:
        return _chain_graph(chain)
    return _cached_trace(model)


def module_path(node: torch.fx.Node) -> str:
    """The dotted path of the module a node belongs to ("" for the model's own forward).

    A ``call_module`` node is that module; any other node lies in the forward of the
    innermost module on the ``nn_module_stack`` torch.fx records while tracing.
    """
    if node.op == "call_module":
        return str(node.target)
    stack = node.meta.get("nn_module_stack")
    return next(reversed(stack.values()))[0] if stack else ""


def _is_leaf(module: nn.Module) -> bool:
    """A module whose forward is torch.nn's own (not a Sequential): one node in the graph.

    torch.fx's default asks the module's class to live in ``torch.nn``; asking it of the
    forward also keeps ``class MyConv(nn.Conv2d)`` whole, while a subclass that rewrites
    the forward (``LayerNorm2d(nn.LayerNorm)`` permuting around ``F.layer_norm``) is traced.
    """
    if isinstance(module, nn.Sequential):
        return False
    return type(module).forward.__module__.startswith(("torch.nn", "torch.ao.nn"))


def _sequential_chain(module: nn.Module, prefix: str) -> list[str] | None:
    """Paths of the leaf modules of a nested Sequential in call order, else None."""
    if not isinstance(module, nn.Sequential):
        return [prefix] if prefix and _is_leaf(module) else None
    paths: list[str] = []
    for name, child in module.named_children():
        sub = _sequential_chain(child, f"{prefix}.{name}" if prefix else name)
        if sub is None:
            return None
        paths.extend(sub)
    return paths


def _chain_graph(paths: list[str]) -> ModelGraph:
    graph = torch.fx.Graph()
    value = graph.placeholder("x")
    outputs: dict[str, tuple[torch.fx.Node, ...]] = {}
    for path in paths:
        value = graph.call_module(path, (value,))
        parts = path.split(".")
        # A container's output is its last leaf's: later leaves overwrite the prefixes.
        for depth in range(1, len(parts) + 1):
            outputs[".".join(parts[:depth])] = (value,)
    graph.output(value)
    return ModelGraph(graph, outputs)


class _RecordingTracer(torch.fx.Tracer):
    """Traces into every module but the leaves of :func:`_is_leaf`, noting the node each
    module call returns."""

    def __init__(self) -> None:
        super().__init__()
        self.module_outputs: dict[str, list[torch.fx.Node]] = {}

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return _is_leaf(m)

    def call_module(self, m, forward, args, kwargs):
        result = super().call_module(m, forward, args, kwargs)
        if isinstance(result, torch.fx.Proxy):
            self.module_outputs.setdefault(self.path_of_module(m), []).append(result.node)
        return result


def _structure(model: nn.Module) -> tuple:
    return tuple((name, type(module)) for name, module in model.named_modules())


def _cached_trace(model: nn.Module) -> ModelGraph:
    with _trace_lock:
        structure = _structure(model)
        cached = _traced.get(model)
        if cached is not None and cached[0] == structure:
            return cached[1]
        tracer = _RecordingTracer()
        try:
            graph = tracer.trace(model)
        except Exception as error:  # fx raises many types for data-dependent control flow
            raise SprayError(
                f"the model {type(model).__name__} cannot be traced by torch.fx ({error}); "
                "remove data-dependent control flow from its forward or pass an nn.Sequential."
            ) from error
        traced = ModelGraph(graph, {path: tuple(nodes) for path, nodes in tracer.module_outputs.items()})
        _traced[model] = (structure, traced)
        return traced
