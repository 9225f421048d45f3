"""Bit rot: every chunk carries a crc32c, `spray check` decodes every done chunk, `--repair` recomputes."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from store_helpers import fill_chunk, make_group

from relevance_store import open_store
from spray.cli import cli
from workflows.compute import compute_classes

CHUNK_FILES = {"score": "score/c/1", "full": "full/c/1/0/0", "pooled": "pooled/20/c/1/0/0"}


def run_cli(*args: str):
    return CliRunner().invoke(cli, list(args))


def flip_8_bytes_inside(path) -> None:
    """XOR 8 bytes in the middle of a stored chunk: inside the compressed payload, before the checksum."""
    data = bytearray(path.read_bytes())
    payload = len(data) - 16 - 4  # after blosc's 16-byte header, before the 4-byte checksum
    assert payload >= 8, f"{path} is too small to hold 8 payload bytes"
    start = 16 + (payload - 8) // 2
    for offset in range(start, start + 8):
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def stored(group) -> dict[str, np.ndarray]:
    names = [
        "sample_id",
        "label",
        "score",
        "predicted",
        "error",
        "full",
        "thumbnail",
        "done",
        *(f"pooled/{grid}" for grid in group.grids),
    ]
    return {name: np.asarray(group.group[name][...]) for name in names}


@pytest.mark.parametrize("array", sorted(CHUNK_FILES))
def test_flipped_bytes_are_reported_repaired_and_recomputed_bit_identical(
    array, tmp_path, compute_images, tiny_model_spec
):
    location = tmp_path / "s.zarr"

    def compute():
        (result,) = compute_classes(
            location,
            "dog",
            model_spec=tiny_model_spec,
            source_spec=str(compute_images),
            chunk_size=5,
            workers=1,
            progress=False,
        )
        return result

    key = compute().key
    before = stored(open_store(location).class_group(key))
    flip_8_bytes_inside(location / key.path / CHUNK_FILES[array])

    checked = run_cli("check", str(location))
    assert checked.exit_code == 1, checked.output
    name = "pooled/20" if array == "pooled" else array
    assert f"chunk 1 of {name!r} cannot be decoded (checksum mismatch)" in checked.output
    assert "--repair" in checked.output

    repaired = run_cli("check", "--repair", str(location))
    assert repaired.exit_code == 1, repaired.output
    assert "marked chunk 1 of class 'dog'" in repaired.output and "recomputes" in repaired.output
    assert open_store(location).class_group(key).pending_chunks() == [1]

    assert compute().n_computed == 5  # that chunk alone
    after = stored(open_store(location).class_group(key))
    for name in before:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)
    ok = run_cli("check", str(location))
    assert ok.exit_code == 0 and "OK" in ok.output


def test_every_array_of_a_class_and_its_analyses_carries_a_crc32c(tmp_path):
    group = make_group(open_store(tmp_path / "s.zarr", "a"), n=8, chunk_size=4)
    fill_chunk(group, 0)
    group.write_analysis({"k": 3}, {"labels": np.arange(4), "names": np.array(["a", "b", "c", "d"])})
    arrays = dict(group.group.arrays())
    arrays.update(
        (f"analysis/{name}", array)
        for name, array in group.group["analysis"][group.analysis_hashes()[0]]["arrays"].arrays()
    )
    arrays.update((f"pooled/{name}", array) for name, array in group.group["pooled"].arrays())
    assert {"sample_id", "done", "score", "full", "pooled/4", "analysis/labels", "analysis/names"} <= set(arrays)
    for name, array in arrays.items():
        assert array.metadata.codecs[-1].to_dict() == {"name": "crc32c"}, name


def test_an_undecodable_analysis_is_removed_by_repair_and_a_done_flag_is_cleared(tmp_path):
    location = tmp_path / "s.zarr"
    group = make_group(open_store(location, "a"), n=8, chunk_size=4)
    fill_chunk(group, 0)
    fill_chunk(group, 1)
    digest = group.write_analysis({"k": 3}, {"labels": np.arange(400)})
    flip_8_bytes_inside(location / group.key.path / "analysis" / digest / "arrays" / "labels" / "c" / "0")
    (location / group.key.path / "done" / "c" / "0").write_bytes(b"rotten")
    checked = run_cli("check", str(location))
    assert checked.exit_code == 1
    assert f"analysis {digest} cannot be decoded" in checked.output
    assert "done flag of chunk 0 cannot be decoded" in checked.output
    repaired = run_cli("check", "--repair", str(location))
    assert repaired.exit_code == 1 and f"removed analysis {digest}" in repaired.output
    group = open_store(location).class_group(group.key)
    assert group.analysis_hashes() == [] and group.pending_chunks() == [0]
    assert run_cli("check", str(location)).exit_code == 0


def test_repair_of_a_sound_store_changes_nothing(tmp_path):
    group = make_group(open_store(tmp_path / "s.zarr", "a"), n=8, chunk_size=4)
    fill_chunk(group, 0)
    result = run_cli("check", "--repair", str(tmp_path / "s.zarr"))
    assert result.exit_code == 0 and "OK" in result.output and group.pending_chunks() == [1]


def test_a_class_group_with_truncated_metadata_is_reported_and_the_others_checked(tmp_path):
    location = tmp_path / "s.zarr"
    store = open_store(location, "a")
    broken, sound = make_group(store, "horse", n=8, chunk_size=4), make_group(store, "zebra", n=8, chunk_size=4)
    fill_chunk(sound, 0)
    fill_chunk(sound, 1)
    sound.group["score"][1] = np.nan  # a problem of the other class: it must still be found
    metadata = location / broken.key.path / "zarr.json"
    metadata.write_bytes(metadata.read_bytes()[:20])
    result = run_cli("check", str(location))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "horse" in result.output and "cannot be read" in result.output
    assert "chunk 0 has 1 non-finite rows in 'score'" in result.output
    info = run_cli("info", str(location))
    assert info.exit_code == 0 and "zebra" in info.output and "not listed: " in info.output and "horse" in info.output


def test_info_and_check_take_the_store_as_an_argument_or_as_store(tmp_path):
    location = str(tmp_path / "s.zarr")
    fill_chunk(make_group(open_store(location, "a"), n=4, chunk_size=4), 0)
    for command in ("info", "check"):
        for args in ([location], ["--store", location], [location, "--store", location]):
            result = run_cli(command, *args)
            assert result.exit_code == 0 and "1 class group(s)" in result.output, (command, args, result.output)
        assert run_cli(command, location, "--store", location + "x").exit_code == 2
