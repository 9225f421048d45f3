"""`spray run` when something is off: a class with too few usable maps, a store it only needs to
read, a reports folder it cannot write, a grid finer than the maps, a class given twice."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from spray.cli import cli
from spray.errors import SprayError
from workflows.config import RunConfig
from workflows.pipeline import run


@pytest.fixture
def images(tmp_path, compute_images) -> Path:
    """The compute test images plus a class 'few' with only two images."""
    folder = tmp_path / "images"
    shutil.copytree(compute_images, folder)
    (folder / "test" / "few").mkdir()
    for i in range(2):
        Image.new("RGB", (30, 40), (10 * i, 0, 0)).save(folder / "test" / "few" / f"{i}.png")
    return folder


@pytest.fixture
def config(images, tmp_path, tiny_model_spec) -> RunConfig:
    (tmp_path / "classes.txt").write_text("cat\ndog\nfew\n")
    return RunConfig().replace(
        model=tiny_model_spec["model"],
        class_names=str(tmp_path / "classes.txt"),
        preprocessing=tiny_model_spec["preprocessing"],
        data=str(images),
        store=str(tmp_path / "s.zarr"),
        reports=str(tmp_path / "reports"),
        embeddings=("tsne",),
        workers=1,
    )


def files_under(*folders: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p): (p.stat().st_mtime_ns, p.stat().st_size)
        for folder in folders
        if folder.exists()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_a_class_with_too_few_maps_is_skipped_and_the_others_go_on(config):
    result = run(config.replace(classes=("all",)), progress=False)
    assert [o.class_name for o in result.outcomes] == ["cat", "dog"]
    assert list(result.skipped) == ["few"] and "has 2 usable relevance maps of 2" in result.skipped["few"]
    assert result.index_page is not None and result.index_page.is_file()
    assert "Skipped (fewer than 3 usable relevance maps): few." in result.index_page.read_text()
    with pytest.raises(SprayError, match="'few' has 2 usable relevance maps of 2; the kNN graph needs at least 3"):
        run(config.replace(classes=("few",)), progress=False)


def test_the_cli_names_the_skipped_class_and_exits_0(config, tmp_path):
    (tmp_path / "run.toml").write_text(
        f'classes = ["dog", "few"]\nmodel = "{config.model}"\nclass_names = "{config.class_names}"\n'
        f'data = "{config.data}"\nstore = "{config.store}"\nreports = "{config.reports}"\nembeddings = ["tsne"]\n'
        f"[preprocessing]\nresize_to = 40\ninput_size = 32\n"
    )
    result = CliRunner().invoke(cli, ["run", "--config", str(tmp_path / "run.toml")])
    assert result.exit_code == 0, result.output
    assert "few: skipped, class 'few' has 2 usable relevance maps" in result.output


def test_reusing_everything_writes_nothing_to_the_store(config):
    run(config.replace(classes=("dog",)), progress=False)
    store, locks = Path(config.store), Path(config.store + ".locks")
    before = files_under(store, locks)
    again = run(config.replace(classes=("dog",)), progress=False)
    assert again.outcomes[0].n_computed == 0 and again.outcomes[0].reused_analysis
    assert files_under(store, locks) == before  # a read-only store would do


def test_a_reports_path_that_is_a_file_fails_before_any_work(config, tmp_path):
    (tmp_path / "reports").write_text("not a folder")
    with pytest.raises(SprayError, match="is a file, not a folder"):
        run(config.replace(classes=("dog",)), progress=False)
    assert not Path(config.store).exists()


def test_a_grid_finer_than_the_maps_is_refused_before_computing(config):
    with pytest.raises(SprayError, match=r"--grid 40 is finer than the 32x32 relevance maps of class 'dog'"):
        run(config.replace(classes=("dog",), grid=40), progress=False)


def test_a_class_given_twice_is_run_once(config):
    result = run(config.replace(classes=("dog", "dog")), progress=False)
    assert [o.class_name for o in result.outcomes] == ["dog"]
