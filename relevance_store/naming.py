"""Safe node names for user strings (class names, fingerprints) inside the store.

A class name is whatever the user's dataset calls it ("../etc", "a/b", "__x"), so it is
never used as a path as-is: every character outside ``[A-Za-z0-9_-]`` is percent-encoded
(so "/" and "." can never climb out of the store) and a leading underscore is encoded too
(Zarr v3 reserves names starting with "__"). The real name is kept in the group's attrs.
"""

from __future__ import annotations

import hashlib
import string
import urllib.parse
from typing import NamedTuple

from spray.errors import StoreError

_SAFE = frozenset(string.ascii_letters + string.digits + "_-")


VERIFY_PADDING = "_verify_padding"
VERIFY_CLUSTER = "_verify_cluster"
"""Groups of the verification experiments beside a variant's class groups
(``<variant>/<group>/<class>/<params-hash>``); no encoded class name starts with ``_``."""

MAX_NODE_NAME = 120
"""Longest node name in characters (ASCII after encoding, so bytes too): file systems allow 255
bytes per name, and a CJK character takes 9 encoded (3 UTF-8 bytes, each ``%XX``)."""


def encode_name(name: str) -> str:
    """Return the node name for ``name``: one path segment, never ``.``/``..``; reversible by
    :func:`decode_name` up to :data:`MAX_NODE_NAME` characters. A longer one is cut and ends in
    ``~`` and 16 hex digits of the name's sha256 (``~`` never occurs otherwise), so two long
    names never share a node; the full name is kept in the group's attrs."""
    if not isinstance(name, str) or not name:
        raise StoreError(f"store node name {name!r} is empty or not text; give a non-empty class name")
    encoded = "".join(c if c in _SAFE else "".join(f"%{b:02X}" for b in c.encode()) for c in name)
    if encoded.startswith("_"):
        encoded = "%5F" + encoded[1:]
    if len(encoded) > MAX_NODE_NAME:
        digest = hashlib.sha256(name.encode()).hexdigest()[:16]
        keep = encoded[: MAX_NODE_NAME - 17]
        keep = keep[: keep.rfind("%")] if "%" in keep[-2:] else keep  # never cut inside a %XX
        encoded = f"{keep}~{digest}"
    return encoded


def decode_name(encoded: str) -> str:
    """Inverse of :func:`encode_name` (of a name of up to :data:`MAX_NODE_NAME` encoded characters)."""
    return urllib.parse.unquote(encoded)


class ClassKey(NamedTuple):
    """Address of one class group: model fingerprint / dataset fingerprint / maps settings / class name.

    ``maps_id`` hashes everything else that decides the maps' values (the resolved input
    pipeline, the class order, the LRP composite, the sample selection and split), so maps
    made with other settings live side by side and never overwrite each other.
    """

    model_id: str
    dataset_id: str
    maps_id: str
    class_name: str

    @property
    def path(self) -> str:
        """The group's path inside the store (each part encoded by :func:`encode_name`)."""
        return "/".join(encode_name(part) for part in self)

    @property
    def variant(self) -> str:
        """The path of the class's variant (model / dataset / maps settings), shared by the classes of a run."""
        return "/".join(encode_name(part) for part in self[:3])

    def __str__(self) -> str:
        return f"{self.class_name} (model {self.model_id[:12]}, data {self.dataset_id[:12]}, maps {self.maps_id[:12]})"
