"""`spray demo export|generate|info`: the exported trees read back through open_source."""

import json

import numpy as np
from click.testing import CliRunner

from spray.cli import cli
from spray.data import open_source
from spray.data.folder import ImageFolderSource
from spray.data.voc import VOCSource
from spray.demo.world import CLASSES, DemoWorld


def test_export_folder_layout_reads_back_with_the_same_pixels(tmp_path):
    result = CliRunner().invoke(cli, ["demo", "export", str(tmp_path), "--limit", "2", "--split", "test"])
    assert result.exit_code == 0, result.output
    source = open_source(tmp_path)
    assert isinstance(source, ImageFolderSource) and source.classes == CLASSES
    assert source.ids(None, "horse") == ["test/horse/test_horse_0000.png", "test/horse/test_horse_0001.png"]
    png = source.load("test/horse/test_horse_0001.png").image
    assert np.array_equal(png, DemoWorld().load("test_horse_0001").image)  # PNG is lossless
    shortcuts = json.loads((tmp_path / "shortcuts.json").read_text())
    assert all(DemoWorld().load(i).annotations["shortcut_kind"] == kind for i, kind in shortcuts.items())


def test_export_voc_layout_reads_back_as_voc(tmp_path):
    result = CliRunner().invoke(
        cli, ["demo", "generate", str(tmp_path), "--layout", "voc", "--limit", "1", "--class", "boat", "--class", "car"]
    )
    assert result.exit_code == 0, result.output
    source = open_source(tmp_path)
    assert isinstance(source, VOCSource)
    assert source.classes == ["boat", "car"] and source.splits == ["test", "train"]
    assert source.ids("train", "car") == ["train_car_0000"]
    sample = source.load("test_boat_0000")
    assert sample.labels == frozenset({"boat"}) and sample.annotations["boxes"][0][0] == "boat"


def test_unknown_class_is_one_line_listing_classes(tmp_path):
    result = CliRunner().invoke(cli, ["demo", "export", str(tmp_path), "--class", "cow"])
    assert result.exit_code == 1 and "known classes: aeroplane, bird" in result.output


def test_info_says_the_checkpoint_matches_the_world():
    result = CliRunner().invoke(cli, ["demo", "info"])
    assert result.exit_code == 0 and "matches the world" in result.output and "horse" in result.output
