"""`spray export virelay`: the layout ViRelAy 1.0's reader opens, checked with h5py, and (when an
interpreter with ViRelAy is at hand) opened with ViRelAy's own Workspace/Project and REST server.

ViRelAy 1.0.0 declares Python >= 3.11.13 and pins numpy < 2.3 and Pillow < 12, so it cannot live
in spray's environment here (Python 3.11.7, numpy 2.4); point SPRAY_VIRELAY_PYTHON at the python
of an environment that has it (`pip install --ignore-requires-python virelay==1.0.0` worked on
3.11.7) to run the ViRelAy test. The h5py test checks every dataset and attribute that reader
touches (virelay/model.py: Project, Hdf5Dataset, AttributionDatabase, AnalysisDatabase, LabelMap).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from relevance_store import ClassKey, open_store
from reports.synthetic import synthetic_class_data
from spray.analysis.pooling import sum_pool
from spray.cli import cli
from spray.errors import SprayError
from workflows.analyze import analyze_group
from workflows.config import RunConfig
from workflows.export_virelay import export_virelay

h5py = pytest.importorskip("h5py")

CLASS_NAMES = ["T-shirt/top", "horse", "cat"]  # a "/" cannot be an HDF5 group name
N, SIDE, CHUNK = 60, 40, 16
SHARED = "shared-0"  # one image that is a member of both exported classes
MODEL, DATA, MAPS = "m" * 16, "d" * 16, "v" * 16


def _make_class(store, name: str, seed: int, maps_id: str = MAPS):
    planted = synthetic_class_data(N, 3, class_name=name, grid=SIDE, seed=seed)
    ids = [f"{name[:5]}-{i}" for i in range(N)]
    ids[0] = SHARED
    labels = np.ones(N, dtype=int)
    labels[1] = 0  # a non-member (as with --select predicted): its true labels are unknown
    config = {
        "class_names": CLASS_NAMES,
        "selection": "true",
        "split": "test",
        "lrp_composite": "thesis",
        "map_shape": [SIDE, SIDE],
        "target": CLASS_NAMES.index(name),
    }
    group = store.create_class(
        ClassKey(MODEL, DATA, maps_id, name),
        ids,
        labels,
        grids=(20,),
        map_shape=(SIDE, SIDE),
        thumbnail_size=48,
        chunk_size=CHUNK,
        attrs={"config": config, "dataset": {"name": "synthetic"}, "model": {"class_names": CLASS_NAMES}},
    )
    full = planted.relevance_thumbnails.astype(np.float32)
    predicted = np.where(np.arange(N) % 5 == 0, (CLASS_NAMES.index(name) + 1) % 3, CLASS_NAMES.index(name))
    for chunk in range(group.n_chunks):
        rows = group.chunk_rows(chunk)
        group.write_chunk(
            chunk,
            scores=np.asarray(planted.scores)[rows],
            pooled={20: sum_pool(full[rows], 20)},
            full=full[rows],
            thumbnails=planted.image_thumbnails[rows],
            predicted=predicted[rows],
        )
    return group


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("virelay")
    store = open_store(root / "store.zarr", mode="a")
    config = RunConfig().replace(embeddings=("tsne",))
    for seed, name in enumerate(["horse", "T-shirt/top"]):
        analyze_group(_make_class(store, name, seed), config.replace(stability="off"))
    _make_class(store, "cat", 7)  # computed, never analysed
    project, categories = export_virelay(str(root / "store.zarr"), root / "project")
    return root, project, categories


def _knn_laplacian(features: np.ndarray, k: int) -> np.ndarray:
    """L_sym of the max-symmetrised binary kNN graph, built without spray.analysis (brute force)."""
    distances = ((features[:, None, :] - features[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(distances, np.inf)
    w = np.zeros_like(distances)
    w[np.arange(len(w))[:, None], np.argsort(distances, axis=1, kind="stable")[:, :k]] = 1.0
    w = np.maximum(w, w.T)
    d = 1.0 / np.sqrt(w.sum(1))
    return np.eye(len(w)) - d[:, None] * w * d[None, :]


def test_project_yaml_and_label_map_name_what_the_reader_opens(exported):
    _root, project, _ = exported
    document = yaml.safe_load(project.read_text())["project"]
    assert {"name", "model", "label_map", "dataset", "attributions", "analyses"} <= set(document)
    assert document["dataset"]["type"] == "hdf5"
    assert document["attributions"]["attribution_strategy"] == "true_label"
    (analysis,) = document["analyses"]
    assert "-" not in analysis["analysis_method"]  # ViRelAy's server maps "-" in URLs to "_"
    for path in [
        document["label_map"],
        document["dataset"]["path"],
        *document["attributions"]["sources"],
        *analysis["sources"],
    ]:
        assert not Path(path).is_absolute() and (project.parent / path).is_file()
    label_map = json.loads((project.parent / document["label_map"]).read_text())
    assert [entry["name"] for entry in label_map] == CLASS_NAMES
    assert [entry["index"] for entry in label_map] == [0, 1, 2]
    assert len({entry["word_net_id"] for entry in label_map}) == 3


def test_hdf5_layout_is_what_virelay_reads(exported):
    root, project, _categories = exported
    folder = project.parent
    store = open_store(root / "store.zarr")
    with (
        h5py.File(folder / "dataset.h5") as data,
        h5py.File(folder / "attribution.h5") as attribution,
        h5py.File(folder / "analysis.h5") as analysis,
    ):
        m = data["data"].shape[0]
        assert data["data"].dtype == np.uint8 and data["data"].shape == (m, 48, 48, 3)
        assert attribution["attribution"].dtype == np.float32 and attribution["attribution"].shape == (m, SIDE, SIDE, 2)
        assert attribution["prediction"].dtype == np.float32 and attribution["prediction"].shape == (m, 3)
        for file in (data, attribution):
            assert file["label"].dtype == np.bool_ and file["label"].shape == (m, 3)  # n-hot: multi-label reader
        label_map = {e["word_net_id"]: e["name"] for e in json.loads((folder / "label-map.json").read_text())}
        keys = list(analysis.keys())
        assert [label_map[k] for k in keys] == ["T-shirt/top", "horse"]  # model output order; "cat" has no analysis
        assert {tuple(analysis[k]["embedding"]) for k in keys} == {("spectral", "tsne")}
        assert {tuple(analysis[k]["cluster"]) for k in keys} == {("njw",)}  # same names in every category
        covered = []
        for key in keys:
            name = label_map[key]
            group, stored = store.find_class(name), store.find_class(name).read_analysis()
            rows = stored.arrays["rows"]
            index = analysis[key]["index"][()]
            assert index.dtype.kind == "u" and index.shape == (len(rows),)
            covered += list(index)
            ids = [s.decode() if isinstance(s, bytes) else s for s in data["sample_id"][index]]
            assert ids == [group.sample_ids[r] for r in rows]
            np.testing.assert_array_equal(data["data"][index], np.asarray(group.thumbnails[:])[rows])
            np.testing.assert_array_equal(attribution["attribution"][index][..., 0], np.asarray(group.full[:])[rows])
            assert not attribution["attribution"][index][..., 1].any()
            prediction = attribution["prediction"][index]
            np.testing.assert_array_equal(prediction.argmax(1), group.predicted[rows])
            assert (prediction.sum(1) == 1).all()
            np.testing.assert_array_equal(attribution["label"][index], data["label"][index])

            spectral = analysis[key]["embedding"]["spectral"]
            eigenvalues = spectral.attrs["eigenvalue"]
            assert spectral.dtype == np.float32 and spectral.shape == (len(rows), len(eigenvalues))
            np.testing.assert_allclose(eigenvalues, stored.arrays["eigenvalues"], atol=1e-6)
            assert (np.diff(eigenvalues) >= 0).all() and eigenvalues[0] == pytest.approx(0, abs=1e-6)
            vectors = spectral[()].astype(np.float64)
            lap = _knn_laplacian(
                sum_pool(np.asarray(group.full[:])[rows], 20).reshape(len(rows), -1), stored.attrs["resolved"]["k"]
            )
            residual = np.linalg.norm(lap @ vectors - vectors * eigenvalues, axis=0)
            assert residual.max() < 1e-4  # column j is the eigenvector of the j-th smallest eigenvalue
            np.testing.assert_allclose(vectors.T @ vectors, np.eye(len(eigenvalues)), atol=1e-4)
            np.testing.assert_allclose(analysis[key]["embedding"]["tsne"][()], stored.arrays["tsne"], rtol=1e-6)
            clusters = analysis[key]["cluster"]["njw"]
            np.testing.assert_array_equal(clusters[()], stored.arrays["labels"])
            assert clusters.attrs["k"] == stored.attrs["n_clusters"]
        assert sorted(covered) == list(range(m))  # every entry belongs to exactly one category


def test_labels_claim_only_the_membership_the_store_records(exported):
    _root, project, _ = exported
    with h5py.File(project.parent / "dataset.h5") as data:
        ids = [s.decode() if isinstance(s, bytes) else s for s in data["sample_id"][()]]
        labels, names = data["label"][()], [s.decode() if isinstance(s, bytes) else s for s in data["class_name"][()]]
    shared = [i for i, s in enumerate(ids) if s == SHARED]
    assert len(shared) == 2  # one entry per exported class, each with that class's map
    for i in shared:
        assert labels[i].tolist() == [True, True, False]
    non_members = [i for i, s in enumerate(ids) if s.endswith("-1")]
    assert non_members and all(not labels[i].any() for i in non_members)
    ordinary = [i for i, s in enumerate(ids) if s.endswith("-7")]
    assert all(labels[i, CLASS_NAMES.index(names[i])] and labels[i].sum() == 1 for i in ordinary)


def test_stored_eigenvectors_are_used_and_a_mismatch_is_refused(tmp_path):
    store = open_store(tmp_path / "store.zarr", mode="a")
    group = _make_class(store, "horse", 3)
    result = analyze_group(group, RunConfig().replace(embeddings=(), stability="off")).result
    rows, arrays = result.arrays["rows"], dict(result.arrays)
    marked = np.full((len(rows), 4), 0.25)
    group.write_analysis(
        {**result.params, "variant": 1},
        {**arrays, "eigenvectors": marked, "eigenvalues": arrays["eigenvalues"][:4]},
        result.tables,
        result.attrs,
    )
    _, (category,) = export_virelay(str(tmp_path / "store.zarr"), tmp_path / "a", ["horse"])
    np.testing.assert_array_equal(category.eigenvectors, marked)  # taken as stored, nothing refitted
    without = {name: value for name, value in arrays.items() if name != "eigenvectors"}  # an older analysis
    group.write_analysis(
        {**result.params, "variant": 2},
        {**without, "eigenvalues": arrays["eigenvalues"] + 0.01},
        result.tables,
        result.attrs,
    )
    with pytest.raises(SprayError, match=r"other eigenvalues.*spray analyze --class horse --force"):
        export_virelay(str(tmp_path / "store.zarr"), tmp_path / "b", ["horse"])


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--class", "zebra"], "has no class 'zebra'"),
        (["--class", "cat"], "class 'cat' in .* has no stored analysis; run `spray analyze --class cat` first"),
    ],
)
def test_bad_classes_get_one_line(exported, arguments, message):
    root, _, _ = exported
    result = CliRunner().invoke(
        cli, ["export", "virelay", str(root / "other"), "--store", str(root / "store.zarr"), *arguments]
    )
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("spray: error:")
    assert re.search(message, lines[0])


def test_an_unwritable_folder_gets_one_line_before_anything_is_written(exported):
    root, _, _ = exported
    blocker = root / "a-file"
    blocker.write_text("not a folder")
    for target in (blocker, blocker / "project"):
        result = CliRunner().invoke(cli, ["export", "virelay", str(target), "--store", str(root / "store.zarr")])
        assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
        assert "export folder" in result.output and "choose another DIR" in result.output


def test_classes_of_two_maps_settings_are_refused(tmp_path):
    store = open_store(tmp_path / "store.zarr", mode="a")
    config = RunConfig().replace(embeddings=())
    analyze_group(_make_class(store, "horse", 1), config.replace(stability="off"))
    analyze_group(_make_class(store, "cat", 2, maps_id="w" * 16), config.replace(stability="off"))
    with pytest.raises(SprayError, match=r"2 different models or maps settings.*--variant"):
        export_virelay(str(tmp_path / "store.zarr"), tmp_path / "out")
    _, categories = export_virelay(str(tmp_path / "store.zarr"), tmp_path / "out", variant="www")
    assert [c.class_name for c in categories] == ["cat"]


def test_without_h5py_the_error_names_the_extra(exported, tmp_path, monkeypatch):
    _, _, categories = exported
    from workflows.virelay_layout import Project, write_project

    monkeypatch.setitem(sys.modules, "h5py", None)
    project = Project("p", "m", "d", CLASS_NAMES, "LRP", "true_label", categories)
    with pytest.raises(SprayError, match=r"pip install 'spray\[virelay\]'"):
        write_project(project, tmp_path)


def _virelay_python() -> str | None:
    configured = os.environ.get("SPRAY_VIRELAY_PYTHON")
    if configured:
        return configured
    try:
        import virelay.model  # noqa: F401
    except ImportError:
        return None
    return sys.executable


@pytest.mark.skipif(
    _virelay_python() is None,
    reason="ViRelAy is not installed here (it needs Python >= 3.11.13); "
    "set SPRAY_VIRELAY_PYTHON to a python that has it",
)
def test_virelay_opens_the_project_and_serves_every_view(exported):
    _, project, categories = exported
    script = Path(__file__).with_name("virelay_check.py")
    output = subprocess.run(
        [_virelay_python(), str(script), str(project)], capture_output=True, text=True, check=True, timeout=300
    ).stdout
    report = json.loads(output)
    assert report["methods"] == ["spray"] and report["clusterings"] == ["njw"]
    assert report["embeddings"] == ["spectral", "tsne"]
    assert [v["human"] for v in report["categories"].values()] == ["T-shirt/top", "horse"]
    for entry, category in zip(report["categories"].values(), categories, strict=True):
        assert entry["spectral"] == [len(category.sample_ids), len(category.eigenvalues)]
        np.testing.assert_allclose(entry["spectral_eigenvalues"], category.eigenvalues, atol=1e-6)
        np.testing.assert_array_equal(entry["clusters"], category.labels)
    assert report["sample"]["shape"] == [48, 48, 3] and report["attribution"]["shape"] == [SIDE, SIDE, 2]
    assert report["sample"]["labels"] == report["attribution"]["labels"] == ["T-shirt/top", "horse"]  # SHARED
    assert set(report["http"].values()) == {200}, report["http"]  # every colour map, plain and overlaid


@pytest.mark.parametrize("layer", [None, "3"])
def test_a_real_run_exports_and_its_spectral_steps_are_found_again(compute_images, tiny_model_spec, tmp_path, layer):
    """`spray run` on the tiny test CNN (one unreadable cat image), with and without --layer (SpRAy on an
    inner layer's channel vectors): the export finds each analysis's eigenvectors from the stored maps."""
    from workflows.pipeline import run

    config = RunConfig().replace(
        model=tiny_model_spec["model"],
        preprocessing=tiny_model_spec["preprocessing"],
        data=str(compute_images),
        store=str(tmp_path / "s.zarr"),
        reports=str(tmp_path / "r"),
        embeddings=(),
        workers=1,
        layer=layer,
        classes=("cat", "dog"),
    )
    run(config, progress=False)
    project, categories = export_virelay(str(tmp_path / "s.zarr"), tmp_path / "out")
    cat = open_store(tmp_path / "s.zarr").find_class("cat")
    assert [c.class_name for c in categories] == ["cat", "dog"]
    assert cat.errors and len(categories[0].sample_ids) == int(cat.valid.sum()) == cat.n_samples - len(cat.errors)
    with h5py.File(project.parent / "analysis.h5") as analysis:
        for key, category in zip(analysis, categories, strict=True):
            spectral = analysis[key]["embedding"]["spectral"]
            np.testing.assert_allclose(spectral.attrs["eigenvalue"], category.eigenvalues, atol=1e-6)
            assert spectral.shape == (len(category.sample_ids), len(category.eigenvalues))
