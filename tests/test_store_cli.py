"""`spray info` and `spray check` on small stores."""

from __future__ import annotations

import numpy as np
from click.testing import CliRunner
from store_helpers import fill_chunk, make_group

from relevance_store import open_store
from spray.cli import cli


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_info_lists_classes_counts_completeness_and_size(tmp_path):
    store = open_store(tmp_path / "s.zarr", "a")
    fill_chunk(make_group(store, "aeroplane", n=10, chunk_size=4), 0, errors=["", "bad", "", ""])
    horse = make_group(store, "horse", n=9, chunk_size=4)
    for index in range(horse.n_chunks):
        fill_chunk(horse, index)
    result = run("info", str(tmp_path / "s.zarr"))
    assert result.exit_code == 0, result.output
    assert "2 class group(s)" in result.output and " KB on disk" in result.output
    lines = {line.split()[0]: line for line in result.output.splitlines() if line.startswith("  ")}
    assert "4/10" in lines["aeroplane"] and "1/3 chunks done" in lines["aeroplane"] and "1 errors" in lines["aeroplane"]
    assert "9/9" in lines["horse"] and "complete" in lines["horse"] and "grids 4, full maps" in lines["horse"]


def test_check_passes_a_sound_store_and_reports_missing_or_non_finite_chunks(tmp_path):
    store = open_store(tmp_path / "s.zarr", "a")
    group = make_group(store, n=8, chunk_size=4)
    fill_chunk(group, 0, errors=["", "unreadable image", "", ""])
    fill_chunk(group, 1)
    group.group["score"][1] = np.nan  # a failed sample: NaN is expected there
    ok = run("check", str(tmp_path / "s.zarr"))
    assert ok.exit_code == 0 and "OK (1 class group(s) checked)" in ok.output
    group.group["score"][4] = np.nan
    (tmp_path / "s.zarr" / group.key.path / "full" / "c" / "0" / "0" / "0").unlink()
    bad = run("check", str(tmp_path / "s.zarr"))
    assert bad.exit_code == 1
    assert "chunk 0 is marked done but its 'full' data is missing" in bad.output
    assert "chunk 1 has 1 non-finite rows in 'score'" in bad.output


def test_info_on_a_missing_store_is_one_clear_line(tmp_path):
    result = run("info", str(tmp_path / "nothing.zarr"))
    assert result.exit_code == 1 and "no spray store" in result.output
