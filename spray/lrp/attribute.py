"""``attribute``: LRP relevance maps as one modified gradient pass (thesis L870-L915).

The model's graph (see :mod:`spray.lrp.graph`) is re-run with functional ops: affine layers
through their composite rule, everything else through the operation's LRP handling below.
Autograd's backward of that explanation graph, seeded with the target logit, is the
relevance of the input. The user's modules are only read, never changed or hooked.
"""

from __future__ import annotations

import operator
import warnings

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from spray.errors import SprayError, UnsupportedLayerError
from spray.lrp.composites import Composite, resolve
from spray.lrp.gradient import pass_through
from spray.lrp.graph import model_graph
from spray.lrp.layers import PARAMETRIC, linear_layer
from spray.lrp.rules import Rule, proportional

# Element-wise activations: relevance passes through unchanged (Eq. 2.37, L756).
_ACTIVATION_MODULES = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
    nn.Mish, nn.Tanh, nn.Sigmoid, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus,
)
_ACTIVATION_FUNCTIONS = {
    F.relu, torch.relu, F.relu6, F.leaky_relu, F.elu, F.selu, F.celu, F.gelu, F.silu, F.mish,
    torch.tanh, F.tanh, torch.sigmoid, F.sigmoid, F.hardtanh, F.hardswish, F.hardsigmoid,
    F.softplus,
}
_ACTIVATION_METHODS = {"relu", "tanh", "sigmoid"}
# Ops that only move values around: their ordinary gradient moves relevance the same way
# (max pooling: winner takes all, Eqs. 2.33-2.35, L736; concat: Eq. 2.41, L782).
_ROUTING_MODULES = (
    nn.MaxPool1d, nn.MaxPool2d, nn.AdaptiveMaxPool2d, nn.Flatten, nn.Unflatten, nn.Identity,
)
_ROUTING_FUNCTIONS = {
    torch.cat, torch.concat, torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze,
    torch.permute, torch.transpose, F.max_pool2d, F.adaptive_max_pool2d, operator.getitem,
    getattr,
}
_ROUTING_METHODS = {
    "view", "reshape", "flatten", "size", "contiguous", "permute", "transpose", "squeeze",
    "unsqueeze", "dim",
}
_DROPOUT_MODULES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout)
# Sum/average pooling is a linear layer with w = 1/n: proportional split (L730).
_POOLING_MODULES = (nn.AvgPool2d, nn.AdaptiveAvgPool2d)
_POOLING_FUNCTIONS = {F.avg_pool2d, F.adaptive_avg_pool2d, torch.mean}
_ADDITIONS = {operator.add, torch.add, operator.iadd}
# Output squashing removed before explaining (L848-L868).
_SQUASH_MODULES = (nn.Softmax, nn.LogSoftmax, nn.Sigmoid)
_SQUASH_FUNCTIONS = {F.softmax, torch.softmax, F.log_softmax, torch.log_softmax, torch.sigmoid,
                     F.sigmoid}
_SQUASH_METHODS = {"softmax", "log_softmax", "sigmoid"}


def attribute(
    model: nn.Module,
    x: torch.Tensor,
    target: int | torch.Tensor,
    composite: str | Composite | Rule = "thesis",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Relevance of each input value for the ``target`` logit, and the logits.

    ``x`` is a batch (B, ...); ``target`` a class index or a (B,) tensor of them. Relevance
    starts as one-hot times the target logit (L544) and is propagated with ``composite``:
    a name ("thesis", the default of SPEC §3.4 / L2106; "epsilon_plus_flat"; "epsilon"), a
    :class:`~spray.lrp.composites.Composite`, or one :class:`~spray.lrp.rules.Rule` for every
    layer. Returns ``(relevance, logits)`` with relevance shaped like ``x``, both detached.

    The model is explained in inference semantics (BatchNorm running statistics, no dropout);
    it is never modified or hooked. A final Softmax/Sigmoid is skipped with a warning and the
    logits are explained (L848-L868).
    """
    composite = resolve(composite)
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        raise SprayError("x must be a batched tensor (B, ...); add a batch dimension with x[None].")
    graph = model_graph(model)
    with torch.enable_grad():
        x_in = x.detach().requires_grad_(True)
        logits = _Explanation(model, graph, composite).run(x_in)
        start = _initial_relevance(logits, target)
        (relevance,) = torch.autograd.grad(logits, x_in, grad_outputs=start)
    return relevance.detach(), logits.detach()


def _initial_relevance(logits: torch.Tensor, target: int | torch.Tensor) -> torch.Tensor:
    """One-hot of the target times its logit (L544)."""
    if logits.dim() != 2:
        raise SprayError(
            f"the model returns shape {tuple(logits.shape)}, not (batch, classes); "
            "explain a classifier whose output is one logit per class."
        )
    batch, classes = logits.shape
    index = torch.as_tensor(target, device=logits.device).long().reshape(-1)
    if index.numel() == 1:
        index = index.expand(batch)
    if index.numel() != batch or bool(((index < 0) | (index >= classes)).any()):
        raise SprayError(
            f"target {target!r} does not name one of {classes} classes per sample; pass an "
            f"int in [0, {classes}) or a tensor of {batch} of them."
        )
    index = index[:, None]
    return torch.zeros_like(logits).scatter(1, index, logits.gather(1, index))


def _is_squash(node: torch.fx.Node, model: nn.Module) -> bool:
    if node.op == "call_module":
        return isinstance(model.get_submodule(node.target), _SQUASH_MODULES)
    if node.op == "call_function":
        return node.target in _SQUASH_FUNCTIONS
    return node.op == "call_method" and node.target in _SQUASH_METHODS


class _Explanation:
    """One pass of the explanation graph over a model's fx graph."""

    def __init__(self, model: nn.Module, graph: torch.fx.Graph, composite: Composite) -> None:
        self.model, self.graph, self.composite = model, graph, composite
        self.values: dict[torch.fx.Node, object] = {}
        # Nodes computed from the input by non-parametric ops only: a parametric layer fed by
        # one of them is an input layer (for the composite's ``first`` rule).
        self.raw: set[torch.fx.Node] = set()
        self.folded: set[torch.fx.Node] = set()

    def run(self, x: torch.Tensor) -> torch.Tensor:
        (output,) = [node for node in self.graph.nodes if node.op == "output"]
        result = output.args[0]
        if not isinstance(result, torch.fx.Node):
            raise SprayError("the model returns several outputs; wrap it to return one logits tensor.")
        if _is_squash(result, self.model):
            warnings.warn(
                f"the model ends in {result.target!r}; explaining its input logits instead "
                "(thesis L848-L868).",
                stacklevel=3,
            )
            result = result.args[0]
        placeholders = [node for node in self.graph.nodes if node.op == "placeholder"]
        if len(placeholders) != 1:
            raise SprayError("the model's forward takes several inputs; wrap it to take one tensor.")
        self.values[placeholders[0]] = x
        self.raw.add(placeholders[0])
        for node in self.graph.nodes:
            if node.op in ("placeholder", "output") or node in self.values:
                continue
            self.values[node] = self._evaluate(node)
            if node is result:
                break
        return self.values[result]

    def _load(self, argument):
        return torch.fx.node.map_arg(argument, lambda node: self.values[node])

    def _is_raw(self, node: torch.fx.Node) -> bool:
        return all(source in self.raw for source in node.all_input_nodes)

    def _evaluate(self, node: torch.fx.Node):
        args, kwargs = self._load(node.args), self._load(node.kwargs)
        if node.op == "get_attr":
            value = _attribute(self.model, node.target)
            self.raw.add(node)
            return value
        if node.op == "call_module":
            return self._module(node, self.model.get_submodule(node.target), args)
        if self._is_raw(node):
            self.raw.add(node)
        if node.op == "call_function":
            return self._function(node, args, kwargs)
        return self._method(node, args, kwargs)

    def _module(self, node: torch.fx.Node, module: nn.Module, args):
        if node in self.folded:
            return args[0]
        if isinstance(module, PARAMETRIC):
            layer = linear_layer(module)
            norm_node = _sole_batch_norm_user(node, self.model)
            if norm_node is not None:
                layer = layer.folded_with(self.model.get_submodule(norm_node.target))
                self.folded.add(norm_node)
            rule = self.composite.rule_for(layer.kind, is_first=self._is_raw(node))
            return rule.apply(args[0], layer)
        if self._is_raw(node):
            self.raw.add(node)
        if isinstance(module, nn.BatchNorm2d):
            _require_running_stats(module, node.target)
            return proportional(_inference_batch_norm(module), args[0])
        if isinstance(module, _ACTIVATION_MODULES):
            inplace = getattr(module, "inplace", False)
            return pass_through(args[0], (lambda t: module(t.clone())) if inplace else module)
        if isinstance(module, _ROUTING_MODULES):
            return module(*args)
        if isinstance(module, _DROPOUT_MODULES):
            return args[0]
        if isinstance(module, _POOLING_MODULES):
            return proportional(module, args[0])
        raise UnsupportedLayerError(node.target, f"{type(module).__module__}.{type(module).__name__}")

    def _function(self, node: torch.fx.Node, args, kwargs):
        target = node.target
        if target in _ACTIVATION_FUNCTIONS:
            kwargs = {key: value for key, value in kwargs.items() if key != "inplace"}
            return pass_through(args[0], lambda t: target(t, *args[1:], **kwargs))
        if target in _ROUTING_FUNCTIONS:
            return target(*args, **kwargs)
        if target in _POOLING_FUNCTIONS:
            return proportional(lambda t: target(t, *args[1:], **kwargs), args[0])
        if target in _ADDITIONS and not kwargs:
            return proportional(operator.add, *args)
        if target is F.dropout:
            return args[0]
        if target in (operator.mul, operator.truediv) and _one_tensor_one_number(args):
            # scaling by a constant keeps each value's relevance (one input per output)
            tensor_first = isinstance(args[0], torch.Tensor)
            tensor = args[0] if tensor_first else args[1]
            return pass_through(tensor, lambda t: target(t, args[1]) if tensor_first else target(args[0], t))
        raise UnsupportedLayerError(node.name, getattr(target, "__name__", str(target)))

    def _method(self, node: torch.fx.Node, args, kwargs):
        name = node.target
        subject, rest = args[0], args[1:]
        if name in _ACTIVATION_METHODS:
            return pass_through(subject, lambda t: getattr(t, name)(*rest, **kwargs))
        if name in _ROUTING_METHODS:
            return getattr(subject, name)(*rest, **kwargs)
        if name == "mean":
            return proportional(lambda t: t.mean(*rest, **kwargs), subject)
        if name == "add" and not kwargs:
            return proportional(operator.add, *args)
        raise UnsupportedLayerError(node.name, f"Tensor.{name}")


def _attribute(model: nn.Module, path: str):
    value = model
    for part in path.split("."):
        value = getattr(value, part)
    return value.detach() if isinstance(value, torch.Tensor) else value


def _one_tensor_one_number(args) -> bool:
    kinds = [isinstance(a, torch.Tensor) for a in args]
    return len(args) == 2 and sum(kinds) == 1 and all(isinstance(a, (torch.Tensor, int, float)) for a in args)


def _sole_batch_norm_user(node: torch.fx.Node, model: nn.Module) -> torch.fx.Node | None:
    """The BatchNorm2d that alone consumes this conv's output, folded into it (eval stats)."""
    users = list(node.users)
    if len(users) != 1 or users[0].op != "call_module":
        return None
    module = model.get_submodule(users[0].target)
    if isinstance(module, nn.BatchNorm2d) and isinstance(model.get_submodule(node.target), nn.Conv2d):
        _require_running_stats(module, users[0].target)
        return users[0]
    return None


def _require_running_stats(norm: nn.BatchNorm2d, path: str) -> None:
    if norm.running_mean is None:
        raise UnsupportedLayerError(path, "BatchNorm2d without running statistics")


def _inference_batch_norm(norm: nn.BatchNorm2d):
    """The BatchNorm as the per-channel affine map it is at inference (Eq. 2.54, L844)."""
    weight = None if norm.weight is None else norm.weight.detach()
    bias = None if norm.bias is None else norm.bias.detach()
    return lambda t: F.batch_norm(
        t, norm.running_mean, norm.running_var, weight, bias, False, 0.0, norm.eps
    )
