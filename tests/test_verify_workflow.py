"""The padding experiment end to end on the demo data with a tiny stand-in model: the per-sample
table in the store, statistics recomputed from it with pandas/scipy, resume, CLI and page."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr
from click.testing import CliRunner
from scipy import stats

from spray.cli import cli
from workflows.config import RunConfig
from workflows.verify_padding import CHUNK_SIZE, PaddingSettings, read_padding_results, verify_padding

TINY_MODEL = """
import torch
from torch import nn

def tiny():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 5, stride=4), nn.ReLU(), nn.MaxPool2d(4), nn.Flatten(),
                         nn.Linear(4 * 14 * 14, 7))
"""
SAMPLES = 12  # per group: 24 images = 2 chunks


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    folder = tmp_path_factory.mktemp("verify")
    (folder / "tiny.py").write_text(TINY_MODEL)
    config = RunConfig().replace(
        model=f"{folder / 'tiny.py'}:tiny",
        store=str(folder / "store.zarr"),
        reports=str(folder / "reports"),
        workers=1,
        seed=0,
    )
    settings = PaddingSettings("aeroplane", samples=SAMPLES, n_examples=2)
    return config, settings, verify_padding(config, settings, progress=False)


def stored_chunks(results, config) -> list[pd.DataFrame]:
    """The per-sample Parquet tables straight from the Zarr store (no spray reader)."""
    root = zarr.open_group(config.store, mode="r")
    model, data, maps, _ = results.attrs["key"]
    node = root[f"{model}/{data}/{maps}/_verify_padding/aeroplane/{results.params_hash}"]
    assert np.asarray(node["done"][:]).all()
    return [
        pd.read_parquet(io.BytesIO(np.asarray(array[...]).tobytes()))
        for _, array in sorted(node["samples"].arrays(), key=lambda item: item[0])
    ]


def test_table_has_every_sample_under_every_strategy(experiment):
    config, _, results = experiment
    table = pd.concat(stored_chunks(results, config), ignore_index=True)
    assert len(stored_chunks(results, config)) == -(-2 * SAMPLES // CHUNK_SIZE)
    assert table.groupby("member")["sample_id"].nunique().to_dict() == {False: SAMPLES, True: SAMPLES}
    assert (table.groupby("sample_id")["strategy"].nunique() == 6).all()
    assert (table.loc[table["strategy"] == "copy_border", "delta"] == 0).all()
    assert set(table["orientation"]) <= {"landscape", "portrait", "square"}
    pd.testing.assert_frame_equal(table, results.table)


def test_statistics_agree_with_scipy_and_pandas_on_the_saved_table(experiment):
    config, _, results = experiment
    table = pd.concat(stored_chunks(results, config), ignore_index=True)
    table = table[table["error"] == ""]
    checked = 0
    for member in (True, False):
        for orientation in ("landscape", "portrait"):
            rows = table[(table["member"] == member) & (table["orientation"] == orientation)]
            for strategy, part in rows.groupby("strategy"):
                row = results.summary[
                    (results.summary["member"] == member)
                    & (results.summary["orientation"] == orientation)
                    & (results.summary["strategy"] == strategy)
                ].iloc[0]
                assert row["n"] == len(part)
                assert row["mean"] == pytest.approx(part["delta"].mean())
                assert row["std"] == pytest.approx(part["delta"].std(), nan_ok=True)
                if strategy != "copy_border" and (part["delta"] != 0).any():
                    assert row["p_value"] == pytest.approx(stats.wilcoxon(part["delta"]).pvalue)
                    checked += 1
    assert checked >= 10


def test_rerun_resumes_only_unfinished_chunks_and_reads_back(experiment):
    config, settings, results = experiment
    root = zarr.open_group(config.store, mode="r+")
    model, data, maps, _ = results.attrs["key"]
    root[f"{model}/{data}/{maps}/_verify_padding/aeroplane/{results.params_hash}/done"][1] = False  # as if killed
    again = verify_padding(config, settings, progress=False, write_page=False)
    assert again.n_computed == 2 * SAMPLES - CHUNK_SIZE  # only the last chunk
    pd.testing.assert_frame_equal(again.table, results.table)  # same bits: seeded strategies
    stored = read_padding_results(config.store, "aeroplane")
    pd.testing.assert_frame_equal(stored.summary, results.summary)
    assert stored.verdict == results.verdict and len(stored.examples["sample_id"]) == 2


def test_reference_colour_is_recorded_and_page_written(experiment):
    _, _, results = experiment
    assert "landscape images of the class" in results.attrs["reference_colour_source"]
    assert results.page.name == "class-aeroplane-padding.html" and results.page.exists()
    assert "reference colour source" in results.page.read_text()


def test_cli_runs_with_a_given_colour_and_reports_bad_input_in_one_line(experiment, tmp_path):
    config, _, _ = experiment
    runner = CliRunner()
    base = [
        "verify",
        "padding",
        "--model",
        config.model,
        "--store",
        str(tmp_path / "s.zarr"),
        "--reports",
        str(tmp_path / "r"),
        "--workers",
        "1",
    ]
    bad = runner.invoke(cli, [*base, "--class", "aeroplane", "--reference-colour", "1,2"])
    assert bad.exit_code == 1 and "R,G,B" in bad.output
    unknown = runner.invoke(cli, [*base, "--class", "zebra"])
    assert unknown.exit_code == 1 and "zebra" in unknown.output
    good = runner.invoke(
        cli, [*base, "--class", "boat", "--samples", "3", "--reference-colour", "10,20,30", "--examples", "0"]
    )
    assert good.exit_code == 0, good.output
    assert "class-boat-padding.html" in good.output
    assert read_padding_results(tmp_path / "s.zarr", "boat").attrs["params"]["reference_colour"] == [10, 20, 30]


def test_a_finished_experiment_is_read_back_without_writing_the_store(experiment):
    config, settings, results = experiment
    store = Path(config.store)
    files = lambda: {str(p): p.stat().st_mtime_ns for p in store.rglob("*") if p.is_file()}  # noqa: E731
    before = files()
    again = verify_padding(config, settings, progress=False, write_page=False)
    assert files() == before and again.n_computed == 0 and again.params_hash == results.params_hash
    pd.testing.assert_frame_equal(again.table, results.table)
