"""Open, create and list a spray relevance store (Zarr v3).

    store = open_store("spray-store.zarr")            # read
    for key in store.class_keys():                    # ClassKey(model_id, dataset_id, maps_id, class_name)
        group = store.class_group(key)                # relevance_store.class_group.ClassGroup
        maps = group.pooled(20)[group.valid]

The root carries ``format="spray-store"`` and ``schema_version``; a store of another
version is refused with a clear error instead of being misread.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, TypeGuard

import zarr
from zarr.core.sync import sync
from zarr.errors import GroupNotFoundError

from relevance_store import nodes
from relevance_store.class_group import ClassGroup, create_class_arrays
from relevance_store.locks import WriterLock
from relevance_store.naming import ClassKey, encode_name
from spray import __version__
from spray.errors import StoreError

FORMAT = "spray-store"
SCHEMA_VERSION = 3
StoreMode = Literal["r", "r+", "a"]
MODES: tuple[StoreMode, ...] = ("r", "r+", "a")


def _is_mode(mode: str) -> TypeGuard[StoreMode]:
    return mode in MODES


def is_local(location: str) -> bool:
    """Whether ``location`` is a local path (not an fsspec URL such as ``s3://``)."""
    return "://" not in location or location.startswith("file://")


def local_path(location: str) -> Path:
    return Path(location.removeprefix("file://")).resolve()


class RelevanceStore:
    """A spray store: class groups addressed by :class:`ClassKey`."""

    def __init__(self, root: zarr.Group, location: str) -> None:
        self.root, self.location = root, location
        self.problems: list[str] = []
        """Groups that could not be read while listing (``child_groups``)."""

    @property
    def is_local(self) -> bool:
        return is_local(self.location)

    # ---- reading ------------------------------------------------------------------------
    def child_groups(self, group: zarr.Group) -> list[tuple[str, zarr.Group]]:
        """The subgroups of ``group`` that open, by name; one that does not (a truncated or
        corrupt ``zarr.json``) is left out and named in :attr:`problems`, so one broken class
        never hides the others."""

        async def names() -> list[str]:
            return [name async for name in group.store.list_dir(group.path)]

        children = []
        for name in sorted(sync(names())):
            if name == "zarr.json" or name.startswith("."):
                continue
            path = f"{group.path}/{name}" if group.path else name
            try:
                child = self.root[path]
            except KeyError:  # a folder without zarr.json: not a node
                continue
            except Exception as error:  # unreadable metadata: report it, go on with the others
                self.problems.append(
                    f"{path}: cannot be read ({type(error).__name__}: {str(error)[:80]}); delete or restore that folder"
                )
                continue
            if isinstance(child, zarr.Group):
                children.append((name, child))
        return children

    def class_keys(self) -> list[ClassKey]:
        """Every class group in the store (model / dataset / maps settings / class), sorted."""
        keys = []
        for _, model in self.child_groups(self.root):
            for _, dataset in self.child_groups(model):
                for _, variant in self.child_groups(dataset):
                    for _, group in self.child_groups(variant):
                        if "key" in group.attrs:
                            keys.append(ClassKey(*nodes.json_list(group.attrs["key"], "class key")))
        return sorted(set(keys))

    def has_class(self, key: ClassKey) -> bool:
        return key.path in self.root

    def class_group(self, key: ClassKey) -> ClassGroup:
        if not self.has_class(key):
            raise StoreError(
                f"the store {self.location} has no class group for {key}; run `spray compute` for it first"
            )
        return ClassGroup(nodes.subgroup(self.root, key.path), key)

    def find_class(self, class_name: str, variant: str | None = None, layer: str | None = None) -> ClassGroup:
        """The one class group named ``class_name``; ``variant`` (a prefix of its maps id or model
        id, see ``spray info``) picks one when the store holds the class under several settings,
        and so does ``layer`` (maps computed with that ``--layer``)."""
        matches = [
            k
            for k in self.class_keys()
            if k.class_name == class_name
            and (variant is None or k.maps_id.startswith(variant) or k.model_id.startswith(variant))
            and (layer is None or self.class_group(k).provenance.get("config", {}).get("layer") == layer)
        ]
        if len(matches) != 1:
            if not matches:
                raise StoreError(
                    f"the store {self.location} has no class {class_name!r}"
                    + (f" under --variant {variant}" if variant else "")
                    + (f" computed with --layer {layer}" if layer else "")
                    + "; see `spray info`"
                )
            listed = "; ".join(f"--variant {k.maps_id[:8]} ({self.class_group(k).settings_summary})" for k in matches)
            raise StoreError(
                f"the store {self.location} holds class {class_name!r} under {len(matches)} settings; "
                f"pick one: {listed}"
            )
        return self.class_group(matches[0])

    def size_on_disk(self) -> int | None:
        """Bytes used by the store directory (None for remote stores)."""
        if not self.is_local:
            return None
        return sum(f.stat().st_size for f in local_path(self.location).rglob("*") if f.is_file())

    # ---- writing ------------------------------------------------------------------------
    def create_class(
        self,
        key: ClassKey,
        sample_ids: Sequence[str],
        labels: Sequence[int],
        *,
        grids: Sequence[int] = (20,),
        map_shape: tuple[int, int] | None = None,
        thumbnail_size: int | None = 48,
        chunk_size: int = 32,
        attrs: dict | None = None,
        latent_channels: int | None = None,
    ) -> ClassGroup:
        """Create (or replace) a class group with every array at its final size (``latent_channels``:
        also an (N, C) array of the relevance at an inner layer's channels)."""
        if self.has_class(key):
            del self.root[key.path]
        group = self.root.require_group(key.path)
        create_class_arrays(
            group,
            sample_ids,
            labels,
            grids=grids,
            map_shape=map_shape,
            thumbnail_size=thumbnail_size,
            chunk_size=chunk_size,
            latent_channels=latent_channels,
        )
        group.update_attributes(
            {**(attrs or {}), "key": list(key), "created_at": time.time(), "spray_version": __version__}
        )
        return ClassGroup(group, key)

    def writer_lock(self, key: ClassKey, *, wait: bool = False) -> WriterLock:
        """The per-class writer lock (with a lease), kept beside the store in ``<store>.locks/``.

        It lives outside the Zarr hierarchy because Zarr warns about every foreign file
        inside one; :mod:`relevance_store.locks` says how it works and ``spray unlock``
        removes locks left behind. Remote (URL) stores cannot be locked this way: the caller
        must make sure only one writer runs per class there.
        """
        if not self.is_local:
            raise StoreError(
                f"writer locks need a local store path, not {self.location}; compute into a local or mounted path"
            )
        stem = "__".join(encode_name(part) for part in key)
        return WriterLock.beside_store(
            local_path(self.location), stem, f"class {key.class_name!r} in {self.location}", wait=wait
        )


def open_store(location: str | os.PathLike, mode: str = "r") -> RelevanceStore:
    """Open a store: ``"r"`` read, ``"r+"`` write an existing one, ``"a"`` create if absent."""
    if not _is_mode(mode):
        raise StoreError(f"store mode {mode!r} is not one of {', '.join(MODES)}")
    location = os.fspath(location)
    if (
        is_local(location)
        and mode == "a"
        and local_path(location).is_dir()
        and any(local_path(location).iterdir())
        and not (local_path(location) / "zarr.json").exists()
    ):
        raise StoreError(f"{location} is a non-empty folder that is not a spray store; choose another --store path")
    try:
        root = zarr.open_group(location, mode=mode, zarr_format=3)
    except (GroupNotFoundError, FileNotFoundError):
        raise StoreError(f"there is no spray store at {location}; run `spray compute` to create one") from None
    if mode == "a" and not dict(root.attrs) and not list(root.keys()):  # just created
        root.update_attributes(
            {"format": FORMAT, "schema_version": SCHEMA_VERSION, "created_by": f"spray {__version__}"}
        )
    if root.attrs.get("format") != FORMAT:
        raise StoreError(
            f"{location} is a Zarr group but not a spray store (no format='{FORMAT}' attribute); "
            "choose another --store path"
        )
    version = root.attrs.get("schema_version")
    if version != SCHEMA_VERSION or isinstance(version, bool):
        if isinstance(version, int) and not isinstance(version, bool):
            age = "an older" if version < SCHEMA_VERSION else "a newer"
            raise StoreError(
                f"the store {location} was written by {age} spray (schema version {version}; this "
                f"spray reads version {SCHEMA_VERSION}); use a matching spray, or compute into a new "
                "store with --store NEW_PATH"
            )
        raise StoreError(
            f"the store {location} has an invalid schema_version attribute {version!r} (this spray "
            f"writes the integer {SCHEMA_VERSION}); it was edited or not written by spray: compute "
            "into a new store with --store NEW_PATH"
        )
    return RelevanceStore(root, location)
