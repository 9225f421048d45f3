"""The explanation graph: a model's fx graph re-run with each operation's LRP handling.

Affine layers go through their composite rule, every other operation through the rule of
its kind below. The result has the model's values; autograd's backward of it, seeded with
relevance, is the LRP pass (the relevance convention of :mod:`spray.lrp.gradient`). The
user's modules are only read, never changed, called with hooks or put in another mode.

Operation kinds and their rules (SPEC section 3.3):

- conv / dense (+ a BatchNorm2d that alone follows a conv, folded): the composite's rule;
- BatchNorm2d, LayerNorm / ``F.layer_norm``: :mod:`spray.lrp.normalisation`;
- element-wise activations: relevance passes through unchanged (Eq. 2.37, L756);
- max pooling: winner takes all, ties split evenly (Eqs. 2.33-2.35, L736; :mod:`spray.lrp.pooling`);
- average pooling, mean, ``+`` and ``-``: the z-rule of the linear map (L730, Eq. 2.39, L772);
- ``*`` and ``/``: scaling by a constant or a gate held constant (:mod:`spray.lrp.products`);
  a softmax only as such a gate;
- routing (reshape, permute, cat (Eq. 2.41, L782), chunk, split, getitem, channel shuffle):
  relevance moves with the values, which is the ordinary gradient of these ops;
- inference-time identities (Dropout, Identity, torchvision's ``stochastic_depth``) and
  ``torch._assert``: nothing to explain;
- any call whose arguments do not depend on the input (shape arithmetic such as
  ``channels // groups``, a transform of parameters): evaluated as it is, a constant.
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Callable

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from spray.errors import SprayError, UnsupportedLayerError
from spray.lrp import normalisation, pooling, products
from spray.lrp.composites import Composite
from spray.lrp.gradient import pass_through, scale_gradient
from spray.lrp.graph import ModelGraph, module_path
from spray.lrp.layers import PARAMETRIC, linear_layer
from spray.lrp.rules import proportional

_ACTIVATION_MODULES = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Tanh,
    nn.Sigmoid,
    nn.Hardtanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Softplus,
)
_ACTIVATION_FUNCTIONS = {
    F.relu,
    torch.relu,
    F.relu6,
    F.leaky_relu,
    F.elu,
    F.selu,
    F.celu,
    F.gelu,
    F.silu,
    F.mish,
    torch.tanh,
    F.tanh,
    torch.sigmoid,
    F.sigmoid,
    F.hardtanh,
    F.hardswish,
    F.hardsigmoid,
    F.softplus,
}
_ACTIVATION_METHODS = {"relu", "tanh", "sigmoid"}
# Gates: what a sigmoid-like op produced (see spray.lrp.products).
_GATE_MODULES = (nn.Sigmoid, nn.Hardsigmoid, nn.Softmax)
_GATE_FUNCTIONS = {torch.sigmoid, F.sigmoid, F.hardsigmoid, F.softmax, torch.softmax}
_GATE_METHODS = {"sigmoid", "softmax"}
_SOFTMAX_FUNCTIONS = {F.softmax, torch.softmax}  # not element-wise: only as a gate
# Ops that only move values: relevance moves with them (their ordinary gradient).
_ROUTING_MODULES = (nn.Flatten, nn.Unflatten)
_ROUTING_FUNCTIONS = {
    torch.cat,
    torch.concat,
    torch.flatten,
    torch.reshape,
    torch.squeeze,
    torch.unsqueeze,
    torch.permute,
    torch.transpose,
    torch.chunk,
    torch.split,
    operator.getitem,
    getattr,
}
_ROUTING_METHODS = {
    "view",
    "reshape",
    "flatten",
    "size",
    "contiguous",
    "permute",
    "transpose",
    "squeeze",
    "unsqueeze",
    "dim",
    "chunk",
    "split",
    "expand",
    "expand_as",
}
# Routing ops that keep each value (a gate seen through them is still a gate).
_SHAPE_FUNCTIONS = _ROUTING_FUNCTIONS - {torch.cat, torch.concat, getattr}
_SHAPE_METHODS = _ROUTING_METHODS - {"size", "dim"}
_IDENTITY_MODULES = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout)
_IDENTITY_FUNCTIONS = {F.dropout, F.dropout2d}
_IDENTITY_FUNCTION_NAMES = {"stochastic_depth"}  # torchvision.ops, fx-wrapped: identity in eval
_POOLING_MODULES = (nn.AvgPool2d, nn.AdaptiveAvgPool2d)
_POOLING_FUNCTIONS = {F.avg_pool2d, F.adaptive_avg_pool2d, torch.mean}
# in-place forms run out of place: the explanation graph never writes into a value
_LINEAR_COMBINATIONS = {
    operator.add: operator.add,
    torch.add: operator.add,
    operator.iadd: operator.add,
    operator.sub: operator.sub,
    torch.sub: operator.sub,
    operator.isub: operator.sub,
}
_LINEAR_COMBINATION_METHODS = {"add": operator.add, "sub": operator.sub}
_PRODUCTS = {
    operator.mul: operator.mul,
    torch.mul: operator.mul,
    operator.imul: operator.mul,
    operator.truediv: operator.truediv,
    torch.div: operator.truediv,
    operator.itruediv: operator.truediv,
}
_PRODUCT_METHODS = {"mul": operator.mul, "div": operator.truediv}
# Output squashing removed before explaining (L848-L868).
_SQUASH_MODULES = (nn.Softmax, nn.LogSoftmax, nn.Sigmoid)
_SQUASH_FUNCTIONS = {F.softmax, torch.softmax, F.log_softmax, torch.log_softmax, torch.sigmoid, F.sigmoid}
_SQUASH_METHODS = {"softmax", "log_softmax", "sigmoid"}

_MAX_POOL_ARGUMENTS = ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
_LAYER_NORM_ARGUMENTS = ("input", "normalized_shape", "weight", "bias", "eps")


class Explanation:
    """One pass of the explanation graph over a model's graph.

    ``masks`` maps nodes to a function of the node's value giving a tensor that multiplies
    the relevance arriving at that output (conditional relevance); ``values`` holds every
    evaluated node's value after the run.
    """

    def __init__(
        self,
        model: nn.Module,
        graph: ModelGraph,
        composite: Composite,
        masks: dict[torch.fx.Node, Callable[[torch.Tensor], torch.Tensor]] | None = None,
    ) -> None:
        self.model, self.graph, self.composite = model, graph.graph, composite
        self.masks = masks or {}
        self.values: dict[torch.fx.Node, object] = {}
        # Nodes computed from the input by non-parametric ops only: a parametric layer fed by
        # one of them is an input layer (for the composite's ``first`` rule).
        self.raw: set[torch.fx.Node] = set()
        self.folded: set[torch.fx.Node] = set()
        self.result = self._explained_node()

    def _explained_node(self) -> torch.fx.Node:
        (output,) = [node for node in self.graph.nodes if node.op == "output"]
        result = output.args[0]
        if not isinstance(result, torch.fx.Node):
            raise SprayError("the model returns several outputs; wrap it to return one logits tensor.")
        if _is_squash(result, self.model):
            warnings.warn(
                f"the model ends in {result.target!r}; explaining its input logits instead (thesis L848-L868).",
                stacklevel=5,  # the caller of attribute / attribute_layers / conditional_relevance
            )
            result = result.args[0]
        return result

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """The model's logits for ``x``, as the explanation graph's output."""
        placeholders = [node for node in self.graph.nodes if node.op == "placeholder"]
        if len(placeholders) != 1:
            raise SprayError("the model's forward takes several inputs; wrap it to take one tensor.")
        self.values[placeholders[0]] = x
        self.raw.add(placeholders[0])
        for node in self.graph.nodes:
            if node.op in ("placeholder", "output") or node in self.values:
                continue
            value = self._evaluate(node)
            if node in self.masks:
                value = scale_gradient(value, self.masks[node](value))
            self.values[node] = value
            if node is self.result:
                break
        logits = self.values[self.result]
        if not isinstance(logits, torch.Tensor):
            raise SprayError(f"the model returns a {type(logits).__name__}; wrap it to return one logits tensor.")
        return logits

    def _load(self, argument):
        return torch.fx.node.map_arg(argument, lambda node: self.values[node])

    def _is_raw(self, node: torch.fx.Node) -> bool:
        return all(source in self.raw for source in node.all_input_nodes)

    def _evaluate(self, node: torch.fx.Node):
        args, kwargs = self._load(node.args), self._load(node.kwargs)
        if node.op == "get_attr":
            self.raw.add(node)
            return _attribute(self.model, _named(node))
        if node.op == "call_module":
            return self._module(node, self.model.get_submodule(_named(node)), args, kwargs)
        if self._is_raw(node):
            self.raw.add(node)
        if not _any_depends_on_input((args, kwargs)):
            # shape arithmetic, parameter transforms, torch._assert: constants, evaluated as is
            return _call(node, args, kwargs)
        if node.op == "call_function":
            return self._function(node, args, kwargs)
        return self._method(node, args, kwargs)

    def _module(self, node: torch.fx.Node, module: nn.Module, args, kwargs):
        if node in self.folded:
            return args[0]
        if isinstance(module, PARAMETRIC):
            layer = linear_layer(module)
            norm_node = _sole_batch_norm_user(node, self.model)
            if norm_node is not None:
                norm = self.model.get_submodule(_named(norm_node))
                assert isinstance(norm, nn.BatchNorm2d)  # what _sole_batch_norm_user finds
                layer = layer.folded_with(norm)
                self.folded.add(norm_node)
            rule = self.composite.rule_for(layer.kind, is_first=self._is_raw(node))
            return rule.apply(args[0], layer)
        if self._is_raw(node):
            self.raw.add(node)
        if isinstance(module, nn.BatchNorm2d):
            return normalisation.batch_norm(module, args[0], _named(node))
        if isinstance(module, nn.LayerNorm):
            weight = None if module.weight is None else module.weight.detach()
            bias = None if module.bias is None else module.bias.detach()
            return normalisation.layer_norm(
                args[0], module.normalized_shape, weight, bias, module.eps, self.composite.layer_norm_epsilon()
            )
        if isinstance(module, nn.Softmax):
            return products.gate_only(args[0], module, _where(node))
        if isinstance(module, _ACTIVATION_MODULES):
            inplace = getattr(module, "inplace", False)
            return pass_through(args[0], (lambda t: module(t.clone())) if inplace else module)
        if isinstance(module, (nn.MaxPool1d, nn.MaxPool2d)):
            if module.return_indices:
                raise UnsupportedLayerError(_named(node), f"{type(module).__name__}(return_indices=True)")
            pool = pooling.max_pool1d if isinstance(module, nn.MaxPool1d) else pooling.max_pool2d
            return pool(args[0], module.kernel_size, module.stride, module.padding, module.dilation, module.ceil_mode)
        if isinstance(module, nn.AdaptiveMaxPool2d):
            if module.return_indices:
                raise UnsupportedLayerError(_named(node), "AdaptiveMaxPool2d(return_indices=True)")
            if module.output_size is None:  # no size at all: torch refuses it too
                raise UnsupportedLayerError(_named(node), "AdaptiveMaxPool2d(output_size=None)")
            return pooling.adaptive_max_pool2d(args[0], module.output_size)
        if isinstance(module, _ROUTING_MODULES):
            return module(*args, **kwargs)
        if isinstance(module, _IDENTITY_MODULES):
            return args[0]
        if isinstance(module, _POOLING_MODULES):
            return proportional(module, args[0])
        raise UnsupportedLayerError(_named(node), f"{type(module).__module__}.{type(module).__name__}")

    def _function(self, node: torch.fx.Node, args, kwargs):
        target = node.target
        if target in _ACTIVATION_FUNCTIONS:
            kwargs = {key: value for key, value in kwargs.items() if key != "inplace"}
            return pass_through(args[0], lambda t: target(t, *args[1:], **kwargs))
        if target in (F.max_pool2d, F.max_pool1d):
            bound = _bind(args, kwargs, _MAX_POOL_ARGUMENTS)
            if bound.pop("return_indices", False):
                raise UnsupportedLayerError(_where(node), f"{target.__name__}(return_indices=True)")
            pool = pooling.max_pool2d if target is F.max_pool2d else pooling.max_pool1d
            return pool(bound.pop("input"), **bound)
        if target is F.adaptive_max_pool2d:
            bound = _bind(args, kwargs, ("input", "output_size", "return_indices"))
            if bound.get("return_indices", False):
                raise UnsupportedLayerError(_where(node), "adaptive_max_pool2d(return_indices=True)")
            return pooling.adaptive_max_pool2d(bound["input"], bound["output_size"])
        if target in _ROUTING_FUNCTIONS:
            return target(*args, **kwargs)
        if target in _SOFTMAX_FUNCTIONS:
            return products.gate_only(args[0], lambda t: target(t, *args[1:], **kwargs), _where(node))
        if target in _IDENTITY_FUNCTIONS or getattr(target, "__name__", None) in _IDENTITY_FUNCTION_NAMES:
            return args[0]
        if target in _POOLING_FUNCTIONS:
            return proportional(lambda t: target(t, *args[1:], **kwargs), args[0])
        if target in _LINEAR_COMBINATIONS and not kwargs:
            return proportional(_LINEAR_COMBINATIONS[target], *args)
        if target in _PRODUCTS and not kwargs:
            return self._product(node, _PRODUCTS[target], args)
        if target is F.layer_norm:
            bound = _bind(args, kwargs, _LAYER_NORM_ARGUMENTS)
            return normalisation.layer_norm(
                bound["input"],
                bound["normalized_shape"],
                bound.get("weight"),
                bound.get("bias"),
                bound.get("eps", 1e-5),
                self.composite.layer_norm_epsilon(),
            )
        raise UnsupportedLayerError(_where(node), _describe(target))

    def _method(self, node: torch.fx.Node, args, kwargs):
        name = node.target
        subject, rest = args[0], args[1:]
        if name in _ACTIVATION_METHODS:
            return pass_through(subject, lambda t: getattr(t, name)(*rest, **kwargs))
        if name in _ROUTING_METHODS:
            return getattr(subject, name)(*rest, **kwargs)
        if name == "softmax":
            return products.gate_only(subject, lambda t: t.softmax(*rest, **kwargs), _where(node))
        if name == "mean":
            return proportional(lambda t: t.mean(*rest, **kwargs), subject)
        if name in _LINEAR_COMBINATION_METHODS and not kwargs:
            return proportional(_LINEAR_COMBINATION_METHODS[name], *args)
        if name in _PRODUCT_METHODS and not kwargs:
            return self._product(node, _PRODUCT_METHODS[name], args)
        raise UnsupportedLayerError(_where(node), f"Tensor.{name}")

    def _product(self, node: torch.fx.Node, op, args):
        a, b = args
        constant_factor = not products.depends_on_input(b) or (op is operator.mul and not products.depends_on_input(a))
        if constant_factor:
            return products.scale(op, a, b)
        if op is not operator.mul:
            raise UnsupportedLayerError(_where(node), f"{_describe(node.target)} by an input-dependent tensor")
        a_node, b_node = node.args
        a_is_gate = products.choose_gate(a, b, self._gate_like(a_node), self._gate_like(b_node))
        if a_is_gate is None:
            raise UnsupportedLayerError(
                _where(node),
                f"{_describe(node.target)} of two input-dependent tensors, neither of which is a gate "
                "(a sigmoid/hardsigmoid/softmax output or a broadcast factor)",
            )
        return products.gate(a, b, a_is_gate)

    def _gate_like(self, node: torch.fx.node.Argument) -> bool:
        """Whether ``node`` is a sigmoid-like op's output, seen through shape-only ops."""
        while True:
            if not isinstance(node, torch.fx.Node):  # a constant
                return False
            if node.op == "call_module":
                module = self.model.get_submodule(_named(node))
                if isinstance(module, _GATE_MODULES):
                    return True
                if not isinstance(module, (nn.Flatten, nn.Unflatten, nn.Identity)):
                    return False
            elif node.op == "call_function":
                if node.target in _GATE_FUNCTIONS:
                    return True
                if node.target not in _SHAPE_FUNCTIONS:
                    return False
            elif node.op == "call_method":
                if node.target in _GATE_METHODS:
                    return True
                if node.target not in _SHAPE_METHODS:
                    return False
            else:
                return False
            node = node.args[0]


def _is_squash(node: torch.fx.Node, model: nn.Module) -> bool:
    if node.op == "call_module":
        return isinstance(model.get_submodule(_named(node)), _SQUASH_MODULES)
    if node.op == "call_function":
        return node.target in _SQUASH_FUNCTIONS
    return node.op == "call_method" and node.target in _SQUASH_METHODS


def _where(node: torch.fx.Node) -> str:
    """A module's path; for an operation, the path of the module whose forward runs it and
    the fx node's name."""
    path = module_path(node)
    if node.op == "call_module":
        return path
    return f"{path} ({node.name})" if path else node.name


def _describe(target) -> str:
    """``operator.mul``, ``torch.matmul``, ``torch.nn.functional.unfold``; else the bare name."""
    module = (getattr(target, "__module__", None) or "").lstrip("_")
    name = getattr(target, "__name__", str(target))
    return f"{module}.{name}" if module in ("operator", "torch") or module.startswith("torch.") else name


def _call(node: torch.fx.Node, args, kwargs):
    target = node.target
    if callable(target):  # call_function
        return target(*args, **kwargs)
    return getattr(args[0], target)(*args[1:], **kwargs)


def _any_depends_on_input(arguments) -> bool:
    found = []
    torch.fx.node.map_aggregate(arguments, lambda value: found.append(products.depends_on_input(value)))
    return any(found)


def _bind(args, kwargs, names: tuple[str, ...]) -> dict:
    """Positional and keyword arguments by parameter name (only those given)."""
    return {**dict(zip(names, args, strict=False)), **kwargs}  # fewer args than names: the rest by default or keyword


def _named(node: torch.fx.Node) -> str:
    """The target of a ``get_attr``, ``call_module`` or ``call_method`` node: a module or
    attribute path, or a method name (only a ``call_function`` node's target is a callable)."""
    target = node.target
    if not isinstance(target, str):
        raise TypeError(f"fx node {node.name} ({node.op}) has the callable target {target!r}, not a name")
    return target


def _attribute(model: nn.Module, path: str):
    value = model
    for part in path.split("."):
        value = getattr(value, part)
    return value.detach() if isinstance(value, torch.Tensor) else value


def _sole_batch_norm_user(node: torch.fx.Node, model: nn.Module) -> torch.fx.Node | None:
    """The BatchNorm2d that alone consumes this conv's output, folded into it (eval stats)."""
    users = list(node.users)
    if len(users) != 1 or users[0].op != "call_module":
        return None
    module = model.get_submodule(_named(users[0]))
    if isinstance(module, nn.BatchNorm2d) and isinstance(model.get_submodule(_named(node)), nn.Conv2d):
        normalisation.require_running_stats(module, _named(users[0]))
        return users[0]
    return None
