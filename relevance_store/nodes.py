"""Typed access to the members and attributes of a Zarr group.

zarr-python types ``group[path]`` as "an array or a group" and every attribute as any JSON
value. The store layout says which one each member is; these helpers check it, so that code
reading the store is typed, and a store whose node has the wrong kind fails with a
:class:`~spray.errors.StoreError` naming that node rather than with an AttributeError later.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import zarr

from spray.errors import StoreError


def array(group: zarr.Group, path: str) -> zarr.Array:
    """The array at ``path`` (relative to ``group``)."""
    node = group[path]
    if not isinstance(node, zarr.Array):
        raise StoreError(f"{_where(group, path)} is a group where the store keeps an array")
    return node


def subgroup(group: zarr.Group, path: str) -> zarr.Group:
    """The group at ``path`` (relative to ``group``)."""
    node = group[path]
    if not isinstance(node, zarr.Group):
        raise StoreError(f"{_where(group, path)} is an array where the store keeps a group")
    return node


def optional_array(group: zarr.Group, path: str) -> zarr.Array | None:
    """The array at ``path``, or None when there is none."""
    return array(group, path) if path in group else None


def read(group: zarr.Group, path: str) -> np.ndarray:
    """All of the array at ``path`` as a numpy array."""
    return np.asarray(array(group, path)[...])


def json_mapping(value: object, what: str = "attribute") -> dict[str, Any]:
    """A JSON attribute that holds an object, as a dict."""
    if not isinstance(value, Mapping):
        raise StoreError(f"{what} should be a JSON object, found {type(value).__name__}")
    return dict(value)


def json_list(value: object, what: str = "attribute") -> list[Any]:
    """A JSON attribute that holds an array, as a list."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise StoreError(f"{what} should be a JSON array, found {type(value).__name__}")
    return list(value)


def json_number(value: object, what: str = "attribute") -> float:
    """A JSON attribute that holds a number, as a float."""
    if not isinstance(value, int | float | str):
        raise StoreError(f"{what} should be a number, found {type(value).__name__}")
    return float(value)


def _where(group: zarr.Group, path: str) -> str:
    return f"{group.path}/{path}".lstrip("/")
