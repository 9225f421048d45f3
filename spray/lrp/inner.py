"""Inner layers by name: which module outputs relevance can be read at, and channel masks.

SpRAy at an inner layer (issue 18; Anders et al. 2022, "Finding and removing Clever Hans",
Information Fusion 77; Pahde et al. 2023, Reveal2Revise) reads the relevance arriving at a
module's output. A layer is named by its module path (``features.28``, ``layer4.2``): a leaf
module or a container, whose output is what its forward returns. A conv followed by a
BatchNorm2d that alone consumes it is one layer to LRP (folded, :mod:`spray.lrp.layers`):
both names read the relevance of the pair's output.
"""

from __future__ import annotations

import difflib
import itertools
import warnings
from collections.abc import Sequence

import torch
import torch.fx
from torch import nn

from spray.errors import SprayError
from spray.lrp.composites import resolve
from spray.lrp.explanation import Explanation
from spray.lrp.graph import ModelGraph, model_graph

Channels = Sequence[int] | torch.Tensor


def layer_node(model: nn.Module, graph: ModelGraph, explanation: Explanation, name: str) -> torch.fx.Node:
    """The node of module ``name``'s output; a clear error if relevance cannot be read there."""
    nodes = graph.outputs.get(name)
    if nodes is None:
        near = difflib.get_close_matches(name, list(graph.outputs), n=5, cutoff=0.5)
        hint = f"near names: {', '.join(near)}" if near else f"its modules start {', '.join(list(graph.outputs)[:5])}"
        raise SprayError(
            f"layer {name!r} is not a module of {type(model).__name__} ({hint}); "
            "spray.lrp.explainable_layers(model, input_shape) lists the layers relevance can be read at."
        )
    if len(nodes) > 1:
        raise SprayError(
            f"layer {name!r} runs {len(nodes)} times in {type(model).__name__}'s forward, so its output "
            "is not one tensor; name a module that runs once (for example the block that contains it)."
        )
    (node,) = nodes
    if node is not explanation.result and node not in _ancestors(explanation.result):
        where = "comes after" if explanation.result in _ancestors(node) else "does not feed"
        raise SprayError(
            f"layer {name!r} {where} the explained logits of {type(model).__name__}, so no relevance "
            "reaches it; name a layer between the input and the classifier's output."
        )
    return node


def channel_mask(channels: Channels, name: str):
    """A function of a layer's output giving the mask that keeps ``channels`` (dim 1).

    ``channels``: channel indices for every sample, or a (batch, channels) tensor of weights
    per sample (1 keeps, 0 drops), e.g. a different concept for each copy of an image.
    """

    def mask(value: torch.Tensor) -> torch.Tensor:
        if not isinstance(value, torch.Tensor) or value.dim() < 2:
            raise SprayError(
                f"layer {name!r} does not output a (batch, channels, ...) tensor; condition on a conv or dense layer."
            )
        batch, count = value.shape[:2]
        broadcast = [1] * (value.dim() - 2)
        if isinstance(channels, torch.Tensor) and channels.dim() == 2:
            if tuple(channels.shape) != (batch, count):
                raise SprayError(
                    f"the channel weights have shape {tuple(channels.shape)}, not "
                    f"(batch, channels) = {(batch, count)} of layer {name!r}."
                )
            return channels.to(value.device, value.dtype).reshape(batch, count, *broadcast)
        index = torch.as_tensor(channels).long().reshape(-1)
        if index.numel() == 0 or bool(((index < 0) | (index >= count)).any()):
            raise SprayError(
                f"channels {list(index.tolist())} are not in [0, {count}) of layer {name!r}; "
                "pass indices of its output channels (dim 1)."
            )
        keep = value.new_zeros(count)
        keep[index.to(value.device)] = 1
        return keep.reshape(1, count, *broadcast)

    return mask


def explainable_layers(model: nn.Module, input_shape: Sequence[int]) -> list[tuple[str, tuple[int, ...]]]:
    """The module paths relevance can be read at, with each one's output shape for one sample.

    ``input_shape`` is one sample's shape, e.g. (3, 224, 224). The model runs once on zeros
    (with the explanation graph, so an unsupported layer raises as it would in ``attribute``).
    Left out: modules that run more than once, those after the logits, and those no
    relevance reaches (a gate branch held constant). In module order.
    """
    shape = tuple(int(n) for n in input_shape)
    if not shape or min(shape) < 1:
        raise SprayError(
            f"input shape {tuple(input_shape)} is not one sample's shape; pass (channels, height, "
            "width) with positive sizes."
        )
    graph = model_graph(model)
    tensor = next(itertools.chain(model.parameters(), model.buffers()), None)
    x = torch.zeros(
        (1, *shape),
        dtype=torch.float32 if tensor is None else tensor.dtype,
        device=None if tensor is None else tensor.device,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a final softmax: the logits are explained, as in attribute
        explanation = Explanation(model, graph, resolve("epsilon"))
    feeding = _ancestors(explanation.result) | {explanation.result}
    candidates = {path: nodes[0] for path, nodes in graph.outputs.items() if len(nodes) == 1 and nodes[0] in feeding}
    try:
        with torch.enable_grad():
            logits = explanation.run(x.requires_grad_(True))
            outputs = {path: explanation.values[node] for path, node in candidates.items()}
            values = {path: v for path, v in outputs.items() if isinstance(v, torch.Tensor) and v.requires_grad}
            # which outputs relevance reaches (not a branch held constant, such as a gate)
            reached = torch.autograd.grad(logits.sum(), list(values.values()), allow_unused=True)
    except SprayError:
        raise
    except Exception as error:  # the model's own shape checks
        raise SprayError(
            f"model {type(model).__name__} fails on an input of shape {shape} ({error}); pass one sample's "
            "shape (channels, height, width) as the model expects it."
        ) from error
    flowing = {path for path, gradient in zip(values, reached, strict=True) if gradient is not None}
    return [(path, tuple(values[path].shape[1:])) for path, _ in model.named_modules() if path in flowing]


def _ancestors(node: torch.fx.Node) -> set[torch.fx.Node]:
    seen: set[torch.fx.Node] = set()
    stack = list(node.all_input_nodes)
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(current.all_input_nodes)
    return seen
