"""One class group of the store: its arrays, completion mask, errors and provenance.

Layout (ARCHITECTURE.md, "Store layout"), N = number of samples, c = chunk size:

    sample_id  (N,)        str      chunks (c,)
    label      (N,)        int8     true membership of the class (1) or not (0)
    score      (N,)        float32  the model's logit for the class (NaN where failed)
    error      (N,)        str      "" or why the sample failed (unreadable image, ...)
    full       (N, H, W)   float32  channel-summed relevance, BitRound(12) (optional)
    pooled/<G> (N, G, G)   float32  sum-pooled relevance per grid G
    thumbnail  (N, T, T, 3) uint8   the input as the model saw it, de-normalised (optional)
    done       (n_chunks,) bool     chunk i complete; chunks (1,) so every flag is its own object

Every array is chunked by ``c`` samples along axis 0, so chunk ``i`` of every array is the
sample rows ``[i*c, (i+1)*c)``: a task that writes chunk ``i`` owns one storage object per
array and nobody else touches it (the safe unit of concurrent Zarr writes, unsharded).
``done[i]`` is written only after all of chunk ``i``'s data.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import zarr
from zarr import AsyncArray
from zarr.core.array_spec import ArrayConfigParams
from zarr.core.common import JSON
from zarr.core.sync import sync
from zarr.errors import ArrayNotFoundError
from zarr.storage import StorePath

from relevance_store import analysis, nodes
from relevance_store.codecs import compressors, full_map_filters
from relevance_store.naming import ClassKey
from spray.errors import StoreError

LATENT_VIEWS = "latent_views"
"""Subgroup of a class group holding, per latent analysis, what its page shows."""

# Write every chunk object even when it equals the fill value (an all-failed chunk is all
# NaN), so presence checks are exact. Runtime config is not stored with the array, so the
# writer applies it again (``_writable``) every time it opens one.
_ARRAY_CONFIG: ArrayConfigParams = {"write_empty_chunks": True}


def _writable(array: zarr.Array) -> zarr.Array:
    return array.with_config(_ARRAY_CONFIG)


def _chunk_slice(index: int, chunk_size: int, n_samples: int) -> slice:
    """The sample rows of chunk ``index``: ``[index*c, (index+1)*c)``, the last one cut at ``n_samples``."""
    return slice(index * chunk_size, min((index + 1) * chunk_size, n_samples))


async def _open_arrays(group: StorePath, names: Sequence[str]) -> dict[str, AsyncArray]:
    """The named arrays of ``group`` that exist, opened concurrently and writable (see ``_writable``)."""

    async def open_or_none(name: str) -> AsyncArray | None:
        try:
            return (await AsyncArray.open(group / name, zarr_format=3)).with_config(_ARRAY_CONFIG)
        except ArrayNotFoundError:
            return None

    opened = await asyncio.gather(*(open_or_none(name) for name in names))
    return {name: array for name, array in zip(names, opened, strict=True) if array is not None}


async def _set_rows(writes: Sequence[tuple[AsyncArray, np.ndarray]], rows: slice) -> None:
    """Write ``rows`` of several arrays at once, encoded concurrently. One chunk's writes, one
    array after another and each opened apart, took 34 ms on the demo; 15 ms like this."""
    await asyncio.gather(*(array.setitem(rows, value) for array, value in writes))


def create_class_arrays(
    group: zarr.Group,
    sample_ids: Sequence[str],
    labels: Sequence[int],
    *,
    grids: Sequence[int],
    map_shape: tuple[int, int] | None,
    thumbnail_size: int | None,
    chunk_size: int,
    latent_channels: int | None = None,
) -> None:
    """Create every array at its final size (never resized later: not safe concurrently)."""
    n = len(sample_ids)
    if n == 0:
        raise StoreError("cannot create a class group with no samples; check the class name and split")
    c = int(chunk_size)

    def make(name: str, shape: tuple, dtype, fill, **extra) -> zarr.Array:
        return _create_rows_array(group, name, shape, c, dtype, fill, **extra)

    _writable(make("sample_id", (n,), str, ""))[:] = np.asarray(sample_ids, dtype=str)
    _writable(make("label", (n,), "int8", 0))[:] = np.asarray(labels, dtype="int8")
    make("score", (n,), "float32", np.nan)
    make("predicted", (n,), "int32", -1)
    make("error", (n,), str, "")
    for grid in grids:
        _create_pooled(group, grid, n, c)
    if map_shape is not None:
        make("full", (n, *map_shape), "float32", np.nan, filters=full_map_filters())
    if thumbnail_size:
        make("thumbnail", (n, int(thumbnail_size), int(thumbnail_size), 3), "uint8", 0)
    if latent_channels:
        make("latent", (n, int(latent_channels)), "float32", np.nan)
        make("latent_activation", (n, int(latent_channels)), "float32", np.nan)
    n_chunks = -(-n // c)
    group.create_array(
        "done",
        shape=(n_chunks,),
        chunks=(1,),
        dtype=bool,
        fill_value=False,
        compressors=compressors(),
        overwrite=True,
    )


def _create_rows_array(group: zarr.Group, name: str, shape: tuple, chunk_size: int, dtype, fill, **extra) -> zarr.Array:
    """An array chunked by ``chunk_size`` samples along axis 0 (whole rows per chunk)."""
    return group.create_array(
        name,
        shape=shape,
        chunks=(chunk_size, *shape[1:]),
        dtype=dtype,
        fill_value=fill,
        compressors=compressors(),
        overwrite=True,
        **extra,
    )


def _create_pooled(group: zarr.Group, grid: int, n: int, chunk_size: int) -> zarr.Array:
    return _create_rows_array(group, f"pooled/{int(grid)}", (n, int(grid), int(grid)), chunk_size, "float32", np.nan)


class ClassGroup:
    """Reader (and chunk writer) of one class group; see the module docstring for the layout."""

    def __init__(self, group: zarr.Group, key: ClassKey) -> None:
        self.group, self.key = group, key

    # ---- shape of the group -------------------------------------------------------------
    @property
    def provenance(self) -> dict:
        """All attrs: LRP composite and params, preprocessing, model/data specs and fingerprints, times."""
        return dict(self.group.attrs)

    @property
    def settings_summary(self) -> str:
        """The settings that made these maps, in a few words (to tell variants of a class apart)."""
        config = self.provenance.get("config", {})
        prep = config.get("preprocessing", {})
        size = prep.get("crop_size") or prep.get("resize_to") or "image-sized"
        return (
            f"composite {config.get('lrp_composite', '?')}, {config.get('selection', '?')} samples of split "
            f"{config.get('split')}, input {size} px {prep.get('channels', 'rgb')}, model {self.key.model_id[:8]}"
        )

    @property
    def model_name(self) -> str:
        """The model's factory (``pkg.mod:fn`` or ``file.py:fn``) from the provenance, for people to read."""
        spec = self.provenance.get("model", {}).get("spec") or {}
        return str(spec.get("model") or "built-in demo model")

    @property
    def map_shape(self) -> tuple[int, int]:
        """(H, W) of a relevance map (the model input's size), as created."""
        height, width = self.provenance["config"]["map_shape"]
        return int(height), int(width)

    @property
    def n_samples(self) -> int:
        return int(nodes.array(self.group, "sample_id").shape[0])

    @property
    def chunk_size(self) -> int:
        return int(nodes.array(self.group, "sample_id").chunks[0])

    @property
    def n_chunks(self) -> int:
        return int(nodes.array(self.group, "done").shape[0])

    @property
    def grids(self) -> list[int]:
        return (
            sorted(int(name) for name in nodes.subgroup(self.group, "pooled").array_keys())
            if "pooled" in self.group
            else []
        )

    def chunk_rows(self, index: int) -> slice:
        """The sample rows of chunk ``index``."""
        return _chunk_slice(index, self.chunk_size, self.n_samples)

    def rows_in_chunks(self, chunks: Sequence[int]) -> int:
        """How many sample rows the chunks ``chunks`` hold together."""
        c, n = self.chunk_size, self.n_samples
        return sum(_chunk_slice(index, c, n).stop - index * c for index in chunks)

    # ---- per-sample data ----------------------------------------------------------------
    @property
    def sample_ids(self) -> list[str]:
        """Every sample id, read from the store at each access: keep the list, do not index the property."""
        return [str(s) for s in nodes.read(self.group, "sample_id")]

    @property
    def labels(self) -> np.ndarray:
        return np.asarray(nodes.read(self.group, "label"), dtype=np.int8)

    @property
    def scores(self) -> np.ndarray:
        return np.asarray(nodes.read(self.group, "score"), dtype=np.float32)

    @property
    def predicted(self) -> np.ndarray:
        """(N,) index of the model's top output per sample (-1: not computed or failed)."""
        return np.asarray(nodes.read(self.group, "predicted"), dtype=np.int32)

    @property
    def error_reasons(self) -> np.ndarray:
        """(N,) numpy StringDType: "" for a good sample, else why it failed."""
        return nodes.read(self.group, "error")

    @property
    def errors(self) -> dict[str, str]:
        """{sample id: reason} for every failed sample."""
        return {sid: reason for sid, reason in zip(self.sample_ids, self.error_reasons, strict=True) if reason}

    def pooled(self, grid: int = 20) -> np.ndarray:
        """(N, G, G) sum-pooled relevance (NaN rows: not computed yet or failed; see ``valid``)."""
        name = f"pooled/{int(grid)}"
        if name not in self.group:
            raise StoreError(
                f"{self.key} has no {grid}x{grid} pooled maps (it has {self.grids}); recompute with --grid {grid}"
            )
        return nodes.read(self.group, name)

    @property
    def full(self) -> zarr.Array | None:
        """(N, H, W) full-resolution relevance as a lazy Zarr array (slice it), or None if not kept."""
        return nodes.optional_array(self.group, "full")

    @property
    def has_latent(self) -> bool:
        """Whether the maps were computed with ``--layer`` (checked without reading them)."""
        return "latent" in self.group

    @property
    def latent(self) -> np.ndarray | None:
        """(N, C) relevance arriving at the inner layer's channels (summed over space), or None
        when the maps were computed without ``--layer``."""
        return nodes.read(self.group, "latent") if "latent" in self.group else None

    @property
    def latent_activation(self) -> np.ndarray | None:
        """(N, C) the inner layer's largest activation per channel (over space), or None."""
        return nodes.read(self.group, "latent_activation") if "latent_activation" in self.group else None

    @property
    def thumbnails(self) -> zarr.Array | None:
        """(N, T, T, 3) uint8 input thumbnails as a lazy Zarr array, or None if not kept."""
        return nodes.optional_array(self.group, "thumbnail")

    # ---- completion ---------------------------------------------------------------------
    @property
    def done(self) -> np.ndarray:
        """(n_chunks,) bool completion mask."""
        return np.asarray(nodes.read(self.group, "done"), dtype=bool)

    @property
    def sample_done(self) -> np.ndarray:
        """(N,) bool: the sample's chunk is complete."""
        return np.repeat(self.done, self.chunk_size)[: self.n_samples]

    @property
    def valid(self) -> np.ndarray:
        """(N,) bool: computed and without error; the rows an analysis should use."""
        return self.sample_done & (self.error_reasons == "")

    @property
    def complete(self) -> bool:
        return bool(self.done.all())

    def writable(self) -> ClassGroup:
        """This group opened for writing (the same group when it already is)."""
        if not self.group.read_only:
            return self
        return ClassGroup(
            zarr.open_group(
                store=self.group.store.with_read_only(False), path=self.group.path, mode="r+", zarr_format=3
            ),
            self.key,
        )

    def reset_done(self) -> None:
        """Mark every chunk not done, so that the next compute rewrites all of them in place
        (``--force``). The arrays and the stored analyses stay; nothing is deleted."""
        _writable(nodes.array(self.group, "done"))[:] = False

    def pending_chunks(self) -> list[int]:
        return [int(i) for i in np.flatnonzero(~self.done)]

    # ---- writing (one task per chunk; arrays were sized by the client) ------------------
    def write_chunk(
        self,
        index: int,
        *,
        scores: np.ndarray,
        pooled: Mapping[int, np.ndarray],
        predicted: np.ndarray | None = None,
        full: np.ndarray | None = None,
        thumbnails: np.ndarray | None = None,
        errors: Sequence[str] | None = None,
        latent: np.ndarray | None = None,
        latent_activation: np.ndarray | None = None,
    ) -> None:
        """Write all of chunk ``index`` (whole chunk objects only), then mark it done."""
        grids = self.grids
        if set(pooled) != set(grids):
            raise StoreError(f"chunk {index} of {self.key} needs pooled maps for grids {grids}, got {sorted(pooled)}")
        names = [
            "score",
            "predicted",
            "error",
            *(f"pooled/{grid}" for grid in grids),
            "full",
            "thumbnail",
            "latent",
            "latent_activation",
            "done",
        ]
        arrays = sync(_open_arrays(self.group.store_path, names))
        rows = _chunk_slice(index, arrays["score"].chunks[0], arrays["score"].shape[0])
        n = rows.stop - rows.start
        if len(scores) != n:
            raise StoreError(f"chunk {index} of {self.key} has {n} rows but {len(scores)} scores were given")
        values = {
            "score": np.asarray(scores, dtype=np.float32),
            "predicted": np.asarray(predicted if predicted is not None else np.full(n, -1), dtype=np.int32),
            "error": np.asarray(errors if errors is not None else [""] * n, dtype=str),
        }
        values.update({f"pooled/{int(grid)}": np.asarray(maps, dtype=np.float32) for grid, maps in pooled.items()})
        for name, given, dtype in (
            ("full", full, np.float32),
            ("thumbnail", thumbnails, np.uint8),
            ("latent", latent, np.float32),
            ("latent_activation", latent_activation, np.float32),
        ):
            if name in arrays:
                if given is None:
                    raise StoreError(f"{self.key} keeps {name} arrays; chunk {index} must include them")
                values[name] = np.asarray(given, dtype=dtype)
        sync(_set_rows([(arrays[name], value) for name, value in values.items()], rows))
        sync(arrays["done"].setitem(index, True))

    def add_grid(self, grid: int, pool: Callable[[np.ndarray, int], np.ndarray]) -> None:
        """Add ``pooled/<grid>`` computed with ``pool(full_rows, grid)`` from the stored full maps.

        Only the done chunks are filled (chunk by chunk, whole chunks); the pending ones are
        left to the tasks, which must then be given the new grid too. Needs full maps; as
        those keep 12 mantissa bits, the result is within ~1e-4 of the map's scale of pooling
        the exact maps.
        """
        full = self.full
        if full is None:
            raise StoreError(
                f"{self.key} keeps no full maps to pool at {grid}x{grid}; "
                "recompute it with --force (and keep the full maps)"
            )
        c, n = self.chunk_size, self.n_samples
        pooled = _writable(_create_pooled(self.group, grid, n, c))
        for index in np.flatnonzero(self.done):
            rows = _chunk_slice(int(index), c, n)
            pooled[rows] = np.asarray(pool(np.asarray(full[rows]), grid), dtype=np.float32)

    def data_arrays(self) -> dict[str, zarr.Array]:
        """Every per-sample array written by chunk tasks, by name."""
        names = ["score", "error", *(f"pooled/{g}" for g in self.grids)]
        names += [name for name in ("full", "thumbnail", "latent", "latent_activation") if name in self.group]
        return {name: nodes.array(self.group, name) for name in names}

    def chunk_present(self, name: str, index: int) -> bool:
        """Whether the storage object of chunk ``index`` of array ``name`` exists."""
        node = nodes.array(self.group, name)
        key = node.metadata.encode_chunk_key((index,) + (0,) * (node.ndim - 1))
        return bool(sync((node.store_path / key).exists()))

    def update_attrs(self, **attrs: JSON) -> None:
        """Merge ``attrs`` into the provenance (client only, never from tasks)."""
        self.group.update_attributes(attrs)

    # ---- views of a latent analysis (workflows.latent_views) ------------------------------
    def latent_views(self, analysis_hash: str) -> dict[str, np.ndarray] | None:
        """The arrays kept for a latent analysis's page (top channels, conditional maps), or None."""
        path = f"{LATENT_VIEWS}/{analysis_hash}"
        if path not in self.group or not nodes.subgroup(self.group, path).attrs.get("complete"):
            return None
        return {name: np.asarray(values[...]) for name, values in nodes.subgroup(self.group, path).arrays()}

    def write_latent_views(self, analysis_hash: str, arrays: Mapping[str, np.ndarray]) -> None:
        """Keep ``arrays`` for ``analysis_hash`` (replacing them), marked complete last."""
        node = self.group.require_group(LATENT_VIEWS).create_group(analysis_hash, overwrite=True)
        for name, value in arrays.items():
            node.create_array(name, data=np.asarray(value), compressors=compressors())
        node.attrs["complete"] = True

    # ---- analysis results (see relevance_store.analysis) --------------------------------
    def write_analysis(
        self,
        params: Mapping,
        arrays: Mapping[str, np.ndarray],
        tables: Mapping | None = None,
        attrs: Mapping | None = None,
    ) -> str:
        """Store an analysis keyed by the hash of *all* its ``params``; ``tables`` are pandas DataFrames."""
        return analysis.write_analysis(self.group, params, arrays, tables or {}, attrs or {})

    def read_analysis(self, params_hash: str | None = None) -> analysis.AnalysisResult:
        """The analysis with ``params_hash`` (default: the latest written)."""
        return analysis.read_analysis(self.group, self.key, params_hash)

    def analysis_hashes(self) -> list[str]:
        """Hashes of the complete analyses stored, oldest first."""
        return analysis.analysis_hashes(self.group)
