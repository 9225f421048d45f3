"""The store's layout, schema check, safe names, reader API and analysis entries."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from store_helpers import fill_chunk, make_group

from relevance_store import ClassKey, StoreError, decode_name, encode_name, open_store, params_hash


def test_new_store_has_format_marker_and_schema_version(tmp_path):
    open_store(tmp_path / "s.zarr", "a")
    root = json.loads((tmp_path / "s.zarr" / "zarr.json").read_text())
    assert root["attributes"]["format"] == "spray-store"
    assert root["attributes"]["schema_version"] == 3  # 2: per-sample "predicted"; 3: maps settings in the key


def test_other_schema_version_is_refused(tmp_path):
    import zarr

    zarr.open_group(tmp_path / "s.zarr", mode="a").attrs.update({"format": "spray-store", "schema_version": 99})
    with pytest.raises(StoreError, match=r"written by a newer spray \(schema version 99; this spray reads version 3\)"):
        open_store(tmp_path / "s.zarr", "r")
    zarr.open_group(tmp_path / "s.zarr", mode="a").attrs.update({"schema_version": 2})
    with pytest.raises(StoreError, match="written by an older spray"):
        open_store(tmp_path / "s.zarr", "r")
    zarr.open_group(tmp_path / "s.zarr", mode="a").attrs.update({"schema_version": "3"})
    with pytest.raises(StoreError, match="invalid schema_version attribute '3'"):
        open_store(tmp_path / "s.zarr", "r")


def test_a_class_group_with_unreadable_metadata_is_reported_and_the_others_are_listed(tmp_path):
    store = open_store(tmp_path / "s.zarr", "a")
    good, broken = make_group(store, "horse"), make_group(store, "boat")
    (tmp_path / "s.zarr" / broken.key.path / "zarr.json").write_text('{"zarr_form')  # truncated by a crash
    reopened = open_store(tmp_path / "s.zarr", "r")
    assert reopened.class_keys() == [good.key]
    assert len(reopened.problems) == 1 and "boat" in reopened.problems[0] and "cannot be read" in reopened.problems[0]


def test_foreign_zarr_group_and_missing_store_are_refused(tmp_path):
    import zarr

    zarr.open_group(tmp_path / "other.zarr", mode="a").attrs["x"] = 1
    with pytest.raises(StoreError, match="not a spray store"):
        open_store(tmp_path / "other.zarr", "a")
    with pytest.raises(StoreError, match="no spray store"):
        open_store(tmp_path / "absent.zarr", "r")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="non-empty folder"):
        open_store(tmp_path / "folder", "a")


@pytest.mark.parametrize("name", ["../../escape", "a/b", ".", "..", "__reserved", "ünïcode name", "%41", ""])
def test_class_names_never_leave_the_store_and_round_trip(tmp_path, name):
    store = open_store(tmp_path / "s.zarr", "a")
    if not name:
        with pytest.raises(StoreError):
            encode_name(name)
        return
    encoded = encode_name(name)
    assert decode_name(encoded) == name
    assert "/" not in encoded and encoded not in (".", "..") and not encoded.startswith("__")
    group = make_group(store, class_name=name, n=3)
    files = [p.resolve() for p in tmp_path.rglob("*") if p.is_file() and "locks" not in p.name]
    assert all((tmp_path / "s.zarr").resolve() in p.parents for p in files)
    assert open_store(tmp_path / "s.zarr").class_keys() == [group.key]


def test_reader_api_returns_what_was_written(tmp_path):
    store = open_store(tmp_path / "s.zarr", "a")
    group = make_group(store, n=10, chunk_size=4)
    assert (group.n_chunks, group.pending_chunks(), group.complete) == (3, [0, 1, 2], False)
    fill_chunk(group, 1, value=2.0, errors=["", "unreadable image", "", ""])
    reread = open_store(tmp_path / "s.zarr").find_class("aeroplane")
    assert reread.done.tolist() == [False, True, False]
    assert reread.sample_done.tolist() == [False] * 4 + [True] * 4 + [False] * 2
    assert reread.valid.tolist() == [False] * 4 + [True, False, True, True] + [False] * 2
    assert reread.errors == {"img005": "unreadable image"}
    assert reread.scores[4:8].tolist() == [2.0] * 4 and np.isnan(reread.scores[:4]).all()
    assert reread.pooled(4).shape == (10, 4, 4) and reread.pooled(4)[4:8].sum() == 2.0 * 4 * 16
    assert reread.full.shape == (10, 8, 8) and reread.thumbnails.shape == (10, 6, 6, 3)
    assert reread.thumbnails[5].max() == 7 and reread.labels.tolist() == [1] * 10
    assert reread.sample_ids[0] == "img000" and reread.provenance["lrp"] == {"composite": "thesis"}
    with pytest.raises(StoreError, match="no 20x20 pooled maps"):
        reread.pooled(20)


def test_chunk_write_needs_every_array(tmp_path):
    group = make_group(open_store(tmp_path / "s.zarr", "a"))
    with pytest.raises(StoreError, match="full"):
        group.write_chunk(0, scores=np.zeros(4), pooled={4: np.zeros((4, 4, 4))}, thumbnails=np.zeros((4, 6, 6, 3)))
    with pytest.raises(StoreError, match="grids"):
        group.write_chunk(0, scores=np.zeros(4), pooled={})
    assert not group.done.any()


def test_no_full_maps_and_no_thumbnails_are_optional(tmp_path):
    group = make_group(open_store(tmp_path / "s.zarr", "a"), map_shape=None, thumbnail_size=None)
    fill_chunk(group, 0)
    assert group.full is None and group.thumbnails is None and group.done[0]


def test_full_maps_keep_small_values_with_bounded_relative_error(tmp_path):
    """BitRound(12) keeps ~1e-5 relevance within 2**-12 relative error; float16 (subnormal there) does not."""
    group = make_group(open_store(tmp_path / "s.zarr", "a"), n=4, map_shape=(32, 32))
    maps = np.random.default_rng(0).normal(scale=1e-5, size=(4, 32, 32)).astype(np.float32)
    group.write_chunk(
        0, scores=np.zeros(4), pooled={4: np.zeros((4, 4, 4))}, full=maps, thumbnails=np.zeros((4, 6, 6, 3))
    )
    stored = group.full[:]
    assert np.all(np.abs(stored - maps) <= np.abs(maps) * 2.0**-12)
    half = maps.astype(np.float16).astype(np.float32)  # what the codec avoids
    assert np.median(np.abs(half - maps) / np.abs(maps)) > 4 * 2.0**-12
    assert np.count_nonzero(stored) == maps.size


def test_analysis_entries_keyed_by_all_params(tmp_path):
    group = make_group(open_store(tmp_path / "s.zarr", "a"))
    with pytest.raises(StoreError, match="spray analyze"):
        group.read_analysis()
    first = group.write_analysis(
        {"grid": 20, "k": 3},
        {"eigenvalues": np.arange(3.0)},
        {"clusters": pd.DataFrame({"size": [2, 1]})},
        {"n_clusters": 2},
    )
    second = group.write_analysis({"grid": 20, "k": np.int64(4)}, {"labels": np.array(["a", "b"])})
    assert first != second == params_hash({"k": 4, "grid": 20})
    assert group.analysis_hashes() == [first, second]
    latest = open_store(tmp_path / "s.zarr").find_class("aeroplane").read_analysis()
    assert latest.params_hash == second and latest.arrays["labels"].tolist() == ["a", "b"]
    earlier = group.read_analysis(first)
    assert earlier.params == {"grid": 20, "k": 3} and earlier.attrs == {"n_clusters": 2}
    assert earlier.tables["clusters"]["size"].tolist() == [2, 1]
    np.testing.assert_array_equal(earlier.arrays["eigenvalues"], np.arange(3.0))
    with pytest.raises(StoreError, match="letters"):
        group.write_analysis({"k": 5}, {"../x": np.zeros(1)})


def test_an_analysis_is_read_member_by_member_when_used(tmp_path):
    """A run reads 1000 classes' analyses back but uses a few members of each: a member is read
    when first used, so a damaged embedding does not stop the eigenvalues from being read, and
    entries written before their member names were kept are listed instead."""
    group = make_group(open_store(tmp_path / "s.zarr", "a"))
    digest = group.write_analysis(
        {"k": 3}, {"eigenvalues": np.arange(3.0), "tsne": np.ones((3, 2))}, {"clusters": pd.DataFrame({"size": [3]})}
    )
    entry = tmp_path / "s.zarr" / group.group.path / "analysis" / digest
    for chunk in (entry / "arrays" / "tsne" / "c").rglob("*"):
        if chunk.is_file():
            chunk.write_bytes(b"not a chunk")
    result = open_store(tmp_path / "s.zarr").class_group(group.key).read_analysis(digest)
    assert sorted(result.arrays) == ["eigenvalues", "tsne"] and list(result.tables) == ["clusters"]
    np.testing.assert_array_equal(result.arrays["eigenvalues"], np.arange(3.0))
    with pytest.raises(Exception):  # noqa: B017 (whichever error the codec raises on garbage)
        result.arrays["tsne"]
    with pytest.raises(KeyError):
        result.arrays["umap"]
    metadata = entry / "zarr.json"
    document = json.loads(metadata.read_text())
    del document["attributes"]["members"]
    metadata.write_text(json.dumps(document))
    listed = open_store(tmp_path / "s.zarr").class_group(group.key).read_analysis(digest)
    assert sorted(listed.arrays) == ["eigenvalues", "tsne"] and list(listed.tables) == ["clusters"]
    assert listed.tables["clusters"]["size"].tolist() == [3]
    assert "tsne" in listed.arrays and "umap" not in listed.arrays
    shutil.rmtree(entry)  # the entry goes while a reader holds it: a clear error, not a zarr one
    with pytest.raises(StoreError, match="changed or was removed since it was opened"):
        listed.arrays["eigenvalues"]


def test_an_analysis_key_must_name_a_complete_entry(tmp_path):
    group = make_group(open_store(tmp_path / "s.zarr", "a"))
    digest = group.write_analysis({"k": 3}, {"eigenvalues": np.arange(3.0)})
    for key in ("../" + digest, digest.upper(), "0" * 16):
        with pytest.raises(StoreError, match="no analysis"):
            group.read_analysis(key)
    group.group[f"analysis/{digest}"].attrs["complete"] = False  # a writer stopped before its last step
    with pytest.raises(StoreError, match="no analysis stored"):
        group.read_analysis(digest)


def test_find_class_needs_a_unique_match(tmp_path):
    store = open_store(tmp_path / "s.zarr", "a")
    make_group(store)
    store.create_class(
        ClassKey("other", "d" * 16, "v" * 16, "aeroplane"), ["a"], [1], chunk_size=1, thumbnail_size=None
    )
    with pytest.raises(StoreError, match=r"holds class 'aeroplane' under 2 settings; pick one: --variant"):
        store.find_class("aeroplane")
    assert store.find_class("aeroplane", variant="other").n_samples == 1  # a model id prefix
    with pytest.raises(StoreError, match="has no class 'horse'"):
        store.find_class("horse")


def test_store_never_imports_torch():
    import subprocess
    import sys

    code = "import sys, relevance_store, relevance_store.integrity; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parent).returncode == 0


def test_a_long_class_name_gets_a_short_unique_node_and_keeps_its_name(tmp_path):
    store = open_store(tmp_path / "s.zarr", "a")
    long_names = ["猫" * 40, "猫" * 39 + "犬", "x" * 300]
    groups = [make_group(store, class_name=name, n=3) for name in long_names]
    nodes = [encode_name(name) for name in long_names]
    assert all(len(node) <= 120 and "~" in node for node in nodes) and len(set(nodes)) == 3
    assert sorted(k.class_name for k in open_store(tmp_path / "s.zarr").class_keys()) == sorted(long_names)
    assert [open_store(tmp_path / "s.zarr").class_group(g.key).n_samples for g in groups] == [3, 3, 3]
