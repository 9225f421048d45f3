"""The compute workflow in-process: maps equal a direct LRP call, resume, force, errors, selection."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from relevance_store import StoreError, check_store, open_store
from spray.analysis.pooling import sum_pool
from spray.data import open_source
from spray.errors import UnknownClassError
from spray.lrp import attribute
from spray.models import load_model
from workflows import cluster
from workflows.compute import compute_classes


@pytest.fixture
def store_path(tmp_path):
    return tmp_path / "s.zarr"


@pytest.fixture
def run(store_path, compute_images, tiny_model_spec):
    """compute_classes on the test images into ``store_path``, in-process, 5 samples per chunk."""

    def run_compute(classes="dog", **options):
        options = {
            "model_spec": tiny_model_spec,
            "source_spec": str(compute_images),
            "chunk_size": 5,
            "workers": 1,
            "progress": False,
            **options,
        }
        return compute_classes(store_path, classes, **options)

    return run_compute


def stored_arrays(group) -> dict[str, np.ndarray]:
    return {name: np.asarray(array[...]) for name, array in group.data_arrays().items()}


def assert_same_arrays(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_stored_maps_equal_a_direct_lrp_call(run, store_path, compute_images, tiny_model_spec):
    (result,) = run("dog", grids=(20, 4))
    group = open_store(store_path).class_group(result.key)
    model = load_model(classes=["cat", "dog", "fox"], **tiny_model_spec)
    source = open_source(str(compute_images))
    assert group.sample_ids == source.ids("test", "dog") and group.complete and result.n_computed == 12
    for row in (0, 7):
        sample_id = group.sample_ids[row]
        image = source.load(sample_id).image
        x = torch.from_numpy(model.preprocessing(image, sample_id))[None]
        relevance, logits = attribute(model.module, x, 1)
        expected = relevance.sum(dim=1)[0].numpy()  # summed over colour channels (L938)
        # BitRound(12) errs by 2**-12 relative; a batch and a single call differ by ~5e-11 near zero on some CPUs.
        np.testing.assert_allclose(group.full[row], expected, rtol=2.0**-12, atol=2.0**-12 * np.abs(expected).max())
        assert group.scores[row] == pytest.approx(float(logits[0, 1]), rel=1e-6, abs=1e-6 * float(logits.abs().max()))
        for grid in (20, 4):
            pooled = sum_pool(expected[None], grid)[0]
            np.testing.assert_allclose(group.pooled(grid)[row], pooled, rtol=1e-4, atol=1e-4 * np.abs(pooled).max())
        seen = Image.fromarray(model.preprocessing.to_uint8(image, sample_id)).resize(
            (48, 48), Image.Resampling.BILINEAR
        )
        assert np.abs(group.thumbnails[row].astype(int) - np.asarray(seen, int)).max() <= 1
    provenance = group.provenance
    assert provenance["model"]["fingerprint"] == model.fingerprint == result.key.model_id
    assert provenance["dataset"]["fingerprint"] == source.fingerprint() == result.key.dataset_id
    assert provenance["lrp"]["composite"] == "thesis" and "AlphaBeta" in provenance["lrp"]["rules"]
    assert provenance["preprocessing"] == model.preprocessing.to_dict()
    assert provenance["completed_at"] >= provenance["started_at"] >= provenance["created_at"]
    assert provenance["spray_version"] and group.labels.tolist() == [1] * 12


def test_rerun_skips_done_chunks_and_recomputes_only_missing_ones(run, store_path):
    (first,) = run("dog")
    group = open_store(store_path, "r+").class_group(first.key)
    before = stored_arrays(group)
    (again,) = run("dog")
    assert (again.n_computed, again.chunks_skipped) == (0, 3)
    group.group["done"][1] = False
    group.group["score"][5:10] = 0.0
    (resumed,) = run("dog")
    assert (resumed.n_computed, resumed.chunks_skipped) == (5, 2)
    assert_same_arrays(stored_arrays(group), before)
    (forced,) = run("dog", force=True)
    assert forced.n_computed == 12
    assert_same_arrays(stored_arrays(group), before)  # the same inputs give the same store bits


def test_corrupt_image_is_skipped_recorded_and_the_run_completes(run, store_path):
    (result,) = run("cat")
    group = open_store(store_path).class_group(result.key)
    assert result.n_samples == 13 and result.n_errors == 1 and group.complete
    (broken,) = [i for i, sid in enumerate(group.sample_ids) if "broken" in sid]
    assert "cannot read image" in group.errors[group.sample_ids[broken]]
    assert not group.valid[broken] and group.valid.sum() == 12
    assert np.isnan(group.scores[broken]) and np.isfinite(np.delete(group.scores, broken)).all()
    assert check_store(open_store(store_path)) == []


def test_another_grid_is_pooled_from_stored_full_maps_without_lrp(run, store_path):
    (first,) = run("dog")
    group = open_store(store_path, "r+").class_group(first.key)
    group.group["done"][1] = False  # one chunk still pending: its task must write the new grid too
    (again,) = run("dog", grids=(4,))
    assert again.n_computed == 5 and group.grids == [4, 20] and group.complete
    from_full = sum_pool(group.full[:], 4)
    done_rows = np.r_[0:5, 10:12]  # pooled from the stored maps; rows 5-9 by their task from exact maps
    np.testing.assert_allclose(
        group.pooled(4)[done_rows], from_full[done_rows], rtol=1e-5, atol=1e-6 * np.abs(from_full).max()
    )
    np.testing.assert_allclose(group.pooled(4)[5:10], from_full[5:10], atol=1e-4 * np.abs(from_full).max())
    assert open_store(store_path).class_group(first.key).provenance["config"]["grids"] == [4, 20]


def test_maps_of_other_settings_live_side_by_side_and_force_recomputes_only_its_own(run, store_path):
    (thesis,) = run("dog")
    (epsilon,) = run("dog", composite="epsilon")
    assert thesis.key[:2] == epsilon.key[:2] and thesis.key.maps_id != epsilon.key.maps_id
    store = open_store(store_path, "r+")
    group, other = store.class_group(thesis.key), store.class_group(epsilon.key)
    assert not np.allclose(group.full[:], other.full[:], equal_nan=True)  # another rule, other maps
    group.write_analysis({"any": "parameters"}, {"labels": np.zeros(12, int)})
    before, before_other = stored_arrays(group), stored_arrays(other)
    (forced,) = run("dog", force=True)
    assert forced.n_computed == 12 and group.analysis_hashes()  # recomputed in place; the analysis stays
    assert_same_arrays(stored_arrays(group), before)
    assert_same_arrays(stored_arrays(other), before_other)  # the other composite's maps are untouched
    assert other.provenance["lrp"]["composite"] == "epsilon"


def test_storage_options_of_a_new_group_are_honoured(run, store_path):
    (result,) = run("fox", grids=(10,), full_maps=False, thumbnail_size=None)
    group = open_store(store_path).class_group(result.key)
    assert group.grids == [10] and group.full is None and group.thumbnails is None and group.complete
    with pytest.raises(StoreError, match="no full maps to pool"):
        run("fox", grids=(5,))


def test_predicted_selection_takes_what_the_model_predicts(run, store_path, compute_images, tiny_model_spec):
    model = load_model(classes=["cat", "dog", "fox"], **tiny_model_spec)
    source = open_source(str(compute_images))
    predicted = {}
    for sample_id in source.ids("test"):
        try:
            x = torch.from_numpy(model.preprocessing(source.load(sample_id).image, sample_id))[None]
        except Exception:
            continue
        with torch.no_grad():
            predicted[sample_id] = int(model.module(x).argmax())
    target = max(range(3), key=lambda c: sum(p == c for p in predicted.values()))
    name = model.class_names[target]
    (result,) = run(name, selection="predicted")
    group = open_store(store_path).class_group(result.key)
    assert group.sample_ids == [sid for sid in source.ids("test") if predicted.get(sid) == target]
    assert group.labels.tolist() == [int(name in source.labels(sid)) for sid in group.sample_ids]


def test_all_classes_run_in_one_call(run, store_path):
    results = run("all")
    assert [r.key.class_name for r in results] == ["cat", "dog", "fox"]
    assert [k.class_name for k in open_store(store_path).class_keys()] == ["cat", "dog", "fox"]


def test_unknown_class_and_bad_scheduler_are_clear_errors(run):
    with pytest.raises(UnknownClassError, match=r"'zebra'.*cat, dog, fox"):
        run("zebra")
    with pytest.raises(cluster.ClusterError, match="tcp://HOST:PORT"):
        run("dog", scheduler="localhost:8786")
    with (
        pytest.raises(cluster.ClusterError, match="cannot reach the Dask scheduler"),
        cluster.remote_client("tcp://127.0.0.1:9", timeout_s=1),
    ):
        pass


def test_small_jobs_run_in_process_unless_workers_are_asked_for():
    assert not cluster.use_local_cluster(None, cluster.LOCAL_CLUSTER_MIN_MAPS - 1) or cluster.default_workers() == 1
    assert cluster.use_local_cluster(2, 1) and not cluster.use_local_cluster(1, 10**6)
    assert cluster.local_threads(1) == cluster.default_workers()


def test_a_complete_class_starts_no_cluster(run, monkeypatch):
    """Resuming a finished class must not pay a cluster's start-up (`spray run` twice in a row)."""
    run("dog")

    def no_cluster(n_workers):
        raise AssertionError("a LocalCluster was started with nothing to compute")

    monkeypatch.setattr(cluster, "local_client", no_cluster)
    (again,) = run("dog", workers=2)
    assert again.n_computed == 0


def test_non_finite_relevance_is_recorded_as_a_sample_error(run, store_path, monkeypatch):
    from workflows import relevance_task

    real_explain = relevance_task.explain

    def first_map_overflows(*args, **kwargs):
        explained = real_explain(*args, **kwargs)
        explained.maps[0, 3, 3] = np.inf
        return explained

    monkeypatch.setattr(relevance_task, "explain", first_map_overflows)
    (result,) = run("dog")
    group = open_store(store_path).class_group(result.key)
    failed = {group.sample_ids[row]: relevance_task.NON_FINITE for row in range(0, 12, 5)}  # first of each chunk
    assert group.errors == failed and result.n_errors == 3
    assert np.isnan(group.pooled(20)[0]).all() and check_store(open_store(store_path)) == []


def test_a_run_whose_lock_was_taken_over_stops_and_keeps_what_it_stored(run, store_path, monkeypatch):
    from relevance_store.store import RelevanceStore
    from workflows import compute
    from workflows.compute import ComputeError

    locks, real_lock, real_chunk = [], RelevanceStore.writer_lock, compute.run_chunk

    def recorded_lock(self, key, wait=False):
        locks.append(real_lock(self, key, wait=wait))
        return locks[-1]

    def chunk_then_lose_the_lock(task):
        result = real_chunk(task)
        for lock in locks:
            lock.lost = True  # as the heartbeat finds when another host took the lock over
        return result

    monkeypatch.setattr(RelevanceStore, "writer_lock", recorded_lock)
    monkeypatch.setattr(compute, "run_chunk", chunk_then_lose_the_lock)
    with pytest.raises(ComputeError, match="another run took over the writer lock of class 'dog'"):
        run("dog")
    group = open_store(store_path).find_class("dog")
    assert group.done.tolist() == [True, False, False] and check_store(open_store(store_path)) == []


def test_the_data_set_is_fingerprinted_once_per_run_not_once_per_class(run, monkeypatch):
    """A folder's fingerprint digests every file of the tree: asked per class, 1000 classes of 64
    images cost 1000 x 64k file digests before any map was computed (benchmarks/many_classes.py)."""
    from spray.data.folder import ImageFolderSource

    calls = []
    fingerprint = ImageFolderSource.fingerprint
    monkeypatch.setattr(ImageFolderSource, "fingerprint", lambda self: calls.append(1) or fingerprint(self))
    results = run("all")
    assert len(results) == 3 and len(calls) == 1
