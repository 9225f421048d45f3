"""`spray verify cluster` end to end on the built-in demo, judged by the world's ground truth.

About a fifth of the demo's horse photos carry a copyright stamp at the bottom-left (the
thesis's horse watermark, L2055); ``DemoWorld().load(id).annotations["shortcut"]`` says which.
After a default ``spray run --class horse``, the cluster holding most of the stamped horses
must be confirmed as a shortcut (removing its region lowers the horse score of its images,
pasting the region into other classes' images raises theirs, both beating their controls),
and the main horse cluster must not be. No number of today's model is assumed: the clusters
are picked by ground truth, the verdicts use the test's own stated margins.

The same run also checks the store (statistics against scipy on the saved table, resume, a
finished test read back without writing), the page and its link, and bad input.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr
from click.testing import CliRunner
from scipy import stats

from relevance_store import open_store
from reports.class_page import render_class_page
from reports.from_store import class_report_data, verification_links
from spray.cli import cli
from spray.demo.world import DemoWorld
from spray.verification.cluster_statistics import GROUP_CONDITIONS
from workflows.analyze import estimator_for
from workflows.config import RunConfig
from workflows.verify_cluster import CHUNK_SIZE, ClusterSettings, read_cluster_results, verify_cluster

pytestmark = pytest.mark.slow  # ~1 min: a default horse run (200 maps, analysis) and two tests of 120 images

SAMPLES = 40  # per target group: 120 images x 3 conditions per test


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A default `spray run --class horse` in a fresh folder, the analysed clusters, and the ground truth."""
    folder = tmp_path_factory.mktemp("cluster-test")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        ran = CliRunner().invoke(cli, ["run", "--class", "horse"])
    assert ran.exit_code == 0, ran.output
    config = RunConfig().replace(
        store=str(folder / "spray-store.zarr"), reports=str(folder / "spray-reports"), workers=1
    )
    store = open_store(config.store, "r")
    (key,) = store.class_keys()
    group = store.class_group(key)
    analysis = group.read_analysis()
    labels = np.asarray(analysis.arrays["labels"])
    ids = [group.sample_ids[r] for r in analysis.arrays["rows"]]
    world = DemoWorld()
    stamped = np.array([bool(world.load(sid).annotations["shortcut"]) for sid in ids])
    clusters = sorted(set(labels.tolist()))

    def jaccard(k: int) -> float:
        return (stamped & (labels == k)).sum() / (stamped | (labels == k)).sum()

    watermark = max(clusters, key=jaccard)
    main = max(clusters, key=lambda k: ((labels == k).sum(), -k))
    assert watermark != main and stamped[labels == watermark].mean() > 0.5, (
        "the default run no longer separates the stamped horses into a cluster of their own; "
        f"cluster shares of stamped images: { {k: round(stamped[labels == k].mean(), 2) for k in clusters} }"
    )
    return {
        "folder": folder,
        "config": config,
        "group": group,
        "analysis": analysis,
        "watermark": watermark,
        "main": main,
        "ids": ids,
        "labels": labels,
        "stamped": stamped,
    }


@pytest.fixture(scope="module")
def watermark(demo):
    """The watermark cluster's test, run through the CLI as a user would."""
    config = demo["config"]
    ran = CliRunner().invoke(
        cli,
        [
            "verify",
            "cluster",
            "--class",
            "horse",
            "--cluster",
            str(demo["watermark"]),
            "--store",
            config.store,
            "--reports",
            config.reports,
            "--workers",
            "1",
            "--samples",
            str(SAMPLES),
            "--examples",
            "2",
        ],
    )
    assert ran.exit_code == 0, ran.output
    return read_cluster_results(config.store, "horse", demo["watermark"]), ran.output


@pytest.fixture(scope="module")
def main(demo):
    return verify_cluster(
        demo["config"], ClusterSettings("horse", demo["main"], samples=SAMPLES, n_examples=2), progress=False
    )


def contrast_row(results, group: str) -> pd.Series:
    return results.contrasts.set_index("group").loc[group]


def test_the_watermark_cluster_is_confirmed(watermark):
    results, output = watermark
    assert results.confirmed, results.verdict
    removed, pasted = contrast_row(results, "members"), contrast_row(results, "other_classes")
    assert removed["intervention_mean"] < 0 and removed["intervention_mean"] < removed["control_mean"]
    assert pasted["intervention_mean"] > 0 and pasted["intervention_mean"] > pasted["control_mean"]
    assert results.verdict["removal"] and results.verdict["transplant"]
    assert results.verdict["headline"] in output and "page: " in output
    record = results.to_dict()  # what an audit records
    assert record["confirmed"] is True and record["cluster"] == results.cluster
    assert json.loads(json.dumps(record, allow_nan=False)) == record


def test_the_main_cluster_is_not_confirmed(main):
    assert not main.confirmed, main.verdict
    assert main.to_dict()["confirmed"] is False


def stamp_masks(ids: list[str], config: RunConfig) -> np.ndarray:
    """The ground-truth stamp boxes as the model sees them (through the run's pipeline)."""
    from workflows.relevance_task import cached_model

    preprocessing = cached_model(config.model_spec()).preprocessing
    world, masks = DemoWorld(), []
    for sid in ids:
        box = world.load(sid).annotations["shortcut_mask"].astype(np.uint8) * 255
        masks.append(preprocessing.model_view(np.repeat(box[..., None], 3, axis=2), sid)[0][..., 0] > 127)
    return np.asarray(masks)


def test_the_region_lies_on_the_stamp(demo, watermark):
    results, _ = watermark
    region = results.region["mask"]
    stamped_ids = [sid for sid, flag in zip(demo["ids"], demo["stamped"], strict=True) if flag]
    stamp = stamp_masks(stamped_ids, demo["config"]).mean(axis=0) > 0.5  # where most stamps sit
    assert (region & stamp).sum() > 0.8 * region.sum()
    described = results.attrs["region"]
    assert described["pixels"] == region.sum() and f"{region.sum()} pixels" in described["description"]


def saved_table(results, config: RunConfig) -> pd.DataFrame:
    """The per-image Parquet tables straight from the Zarr store (no spray reader)."""
    root = zarr.open_group(config.store, mode="r")
    model, data, maps, _ = results.attrs["key"]
    node = root[f"{model}/{data}/{maps}/_verify_cluster/horse/{results.params_hash}"]
    assert np.asarray(node["done"][:]).all()
    chunks = sorted(node["samples"].arrays(), key=lambda item: item[0])
    return pd.concat(
        [pd.read_parquet(io.BytesIO(np.asarray(array[...]).tobytes())) for _, array in chunks], ignore_index=True
    )


def test_statistics_agree_with_scipy_on_the_saved_table(demo, main):
    table = saved_table(main, demo["config"])
    pd.testing.assert_frame_equal(table, main.table)
    table = table[table["error"] == ""]
    in_main = int((demo["labels"] == demo["main"]).sum())
    expected = {
        "members": min(SAMPLES, in_main),
        "non_members": min(SAMPLES, len(demo["labels"]) - in_main),
        "other_classes": SAMPLES,
    }
    assert table.groupby("group")["sample_id"].nunique().to_dict() == expected
    for group, (intervention, control) in GROUP_CONDITIONS.items():
        wide = table[table["group"] == group].pivot(index="sample_id", columns="condition", values="score")
        for condition in (intervention, control):
            change = wide[condition] - wide["original"]
            row = main.summary[(main.summary["group"] == group) & (main.summary["condition"] == condition)].iloc[0]
            assert row["n"] == len(change) and row["mean"] == pytest.approx(change.mean(), abs=1e-9)
            assert row["p_value"] == pytest.approx(stats.wilcoxon(change).pvalue)
        difference = (wide[intervention] - wide[control]).to_numpy()
        row = contrast_row(main, group)
        assert row["difference"] == pytest.approx(difference.mean(), abs=1e-9)
        assert row["p_value"] == pytest.approx(stats.wilcoxon(difference).pvalue)
        assert row["consistency"] == pytest.approx(difference.mean() / difference.std(ddof=1))
        spread = np.std(demo["group"].scores[demo["analysis"].arrays["rows"]].astype(float), ddof=1)
        assert row["effect"] == pytest.approx(difference.mean() / spread)


def test_outside_the_region_nothing_changes_and_examples_are_stored(watermark):
    results, _ = watermark
    examples, region = results.examples, results.region["mask"]
    assert list(examples["group"]) == ["members", "other_classes"]
    pixels = examples["pixels"]  # (E, 3 conditions, H, W, 3)
    assert np.array_equal(pixels[:, 1][:, ~region], pixels[:, 0][:, ~region])  # remove / paste: region only
    assert not np.array_equal(pixels[:, 1][:, region], pixels[:, 0][:, region])
    assert examples["relevance"].shape == pixels.shape[:4]


def test_a_chunk_marked_not_done_is_recomputed_alone_with_the_same_rows(demo, main):
    config = demo["config"]
    root = zarr.open_group(config.store, mode="r+")
    model, data, maps, _ = main.attrs["key"]
    root[f"{model}/{data}/{maps}/_verify_cluster/horse/{main.params_hash}/done"][1] = False  # as if killed
    again = verify_cluster(
        config, ClusterSettings("horse", demo["main"], samples=SAMPLES, n_examples=2), progress=False, write_page=False
    )
    assert again.n_computed == CHUNK_SIZE and again.params_hash == main.params_hash
    pd.testing.assert_frame_equal(again.table, main.table)  # seeded plan: the same images, donors and regions
    pd.testing.assert_frame_equal(again.contrasts, main.contrasts)


def test_a_finished_test_is_read_back_without_writing_the_store(demo, main):
    store = Path(demo["config"].store)
    files = lambda: {str(p): p.stat().st_mtime_ns for p in store.rglob("*") if p.is_file()}  # noqa: E731
    before = files()
    again = verify_cluster(
        demo["config"],
        ClusterSettings("horse", demo["main"], samples=SAMPLES, n_examples=2),
        progress=False,
        write_page=False,
    )
    assert files() == before and again.n_computed == 0
    pd.testing.assert_frame_equal(again.table, main.table)


def test_the_page_and_the_link_from_the_cluster_card(demo, watermark, main):
    _, output = watermark
    reports = Path(demo["config"].reports)
    written = reports / f"class-horse-cluster-{demo['watermark']}.html"
    assert f"page: {written}" in output
    page = written.read_text()
    for text in ("shortcut test", "Intervention against control", "Before and after", "random region removed"):
        assert text in page
    links = verification_links(reports, demo["group"])
    assert {label: page for label, page in links.items() if "cluster" in label} == {
        f"cluster {k} shortcut test": f"class-horse-cluster-{k}.html" for k in sorted({demo["watermark"], demo["main"]})
    }
    assert not any("cluster" in label for label in verification_links(reports, demo["group"], "another-analysis"))
    card = render_class_page(class_report_data(demo["group"], demo["analysis"], links=links), reports).read_text()
    assert f'href="class-horse-cluster-{demo["watermark"]}.html">shortcut test</a>' in card
    plain = render_class_page(class_report_data(demo["group"], demo["analysis"]), reports / "plain").read_text()
    assert ">shortcut test</a>" not in plain  # no page, no link


def one_line_error(args: list[str]) -> str:
    ran = CliRunner().invoke(cli, ["verify", "cluster", "--workers", "1", *args])
    assert ran.exit_code == 1 and ran.output.startswith("spray: error: ") and ran.output.count("\n") == 1, ran.output
    return ran.output


def test_bad_input_gets_one_clear_line_each(demo, tmp_path):
    config = demo["config"]
    where = ["--store", config.store, "--reports", str(tmp_path / "r")]
    known = ", ".join(str(k) for k in sorted(set(demo["labels"].tolist())))
    unknown = one_line_error([*where, "--class", "horse", "--cluster", "7"])
    assert f"has no cluster 7; its clusters are {known}" in unknown
    assert "run `spray run --class cat` first" in one_line_error([*where, "--class", "cat", "--cluster", "0"])
    assert "run `spray run --class horse` first" in one_line_error(
        [*where, "--class", "horse", "--cluster", "0", "--k", "3"]
    )  # no analysis with these settings
    assert "zebra" in one_line_error([*where, "--class", "zebra", "--cluster", "0"])


def test_a_cluster_of_one_image_is_refused(demo, tmp_path):
    """An analysis (stored beside the real one, in a copy of the store) whose cluster 2 has one image."""
    store = tmp_path / "store.zarr"
    shutil.copytree(demo["config"].store, store)
    group = open_store(store, "r+").class_group(demo["group"].key)
    real = demo["analysis"]
    settings = demo["config"].analysis.replace(n_clusters=3)
    labels = np.asarray(real.arrays["labels"]).copy()
    labels[-1] = 2
    table = pd.DataFrame(
        {
            "cluster": [0, 1, 2],
            "size": [int((labels == k).sum()) for k in range(3)],
            "medoids": [[int(np.flatnonzero(labels == k)[0])] for k in range(3)],
        }
    )
    group.write_analysis(
        {**estimator_for(settings).get_params(), "rows": "made up", "stability": False},
        {**real.arrays, "labels": labels},
        {"clusters": table},
    )
    output = one_line_error(
        [
            "--store",
            str(store),
            "--reports",
            str(tmp_path / "r"),
            "--class",
            "horse",
            "--cluster",
            "2",
            "--n-clusters",
            "3",
        ]
    )
    assert "cluster 2 of class 'horse' has 1 image" in output


ONE_OUTPUT_MODEL = """
import torch
from torch import nn

def one():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 1))
"""


def test_a_class_with_no_other_class_to_paste_into_is_refused(tmp_path):
    from PIL import Image

    folder = tmp_path / "images" / "test" / "cat"
    folder.mkdir(parents=True)
    for i in range(4):
        Image.fromarray(np.full((20, 20, 3), 40 * i, np.uint8)).save(folder / f"cat{i}.png")
    (tmp_path / "one.py").write_text(ONE_OUTPUT_MODEL)
    output = one_line_error(
        [
            "--model",
            f"{tmp_path / 'one.py'}:one",
            "--data",
            str(tmp_path / "images"),
            "--preprocessing",
            "native",
            "--store",
            str(tmp_path / "s.zarr"),
            "--reports",
            str(tmp_path / "r"),
            "--class",
            "cat",
            "--cluster",
            "0",
        ]
    )
    assert "no image outside class 'cat'" in output and "other classes" in output
