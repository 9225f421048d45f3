"""Image-folder source: layout, splits, labels, corrupt files and the errors that list classes."""

import numpy as np
import pytest
from PIL import Image

from spray.data import open_source
from spray.data.folder import ImageFolderSource
from spray.errors import SprayError, UnknownClassError, UnreadableImageError


def _write(path, size=(30, 20), colour=(200, 10, 10), fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, format=fmt)


@pytest.fixture
def flat(tmp_path):
    _write(tmp_path / "cat" / "a.png")
    _write(tmp_path / "cat" / "b.jpg", colour=(10, 200, 10))
    _write(tmp_path / "dog" / "sub" / "c.bmp", size=(10, 40))
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    return tmp_path


def test_flat_folder_is_one_split_with_labels_from_folders(flat):
    source = open_source(flat)
    assert isinstance(source, ImageFolderSource)
    assert source.classes == ["cat", "dog"] and source.splits == ["all"]
    assert source.ids(split=None) == ["cat/a.png", "cat/b.jpg", "dog/sub/c.bmp"]
    assert source.ids(class_name="dog") == ["dog/sub/c.bmp"]  # the default "test" split answers with "all"
    assert source.labels("cat/b.jpg") == frozenset({"cat"})
    sample = source.load("dog/sub/c.bmp")
    assert sample.image.shape == (40, 10, 3) and sample.image.dtype == np.uint8
    assert sample.labels == frozenset({"dog"})
    assert tuple(source.load("cat/a.png").image[0, 0]) == (200, 10, 10)


def test_train_and_test_subfolders_are_splits(tmp_path):
    _write(tmp_path / "train" / "cat" / "1.png")
    _write(tmp_path / "train" / "dog" / "2.png")
    _write(tmp_path / "test" / "cat" / "3.png")
    source = open_source(tmp_path)
    assert source.splits == ["train", "test"] and source.classes == ["cat", "dog"]
    assert source.ids("test") == ["test/cat/3.png"]
    assert source.ids("train", "dog") == ["train/dog/2.png"]
    assert len(source.ids(None)) == 3
    with pytest.raises(SprayError, match="train, test"):
        source.ids("val")


def test_corrupt_image_names_the_file(flat):
    (flat / "cat" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    source = open_source(flat)
    with pytest.raises(UnreadableImageError, match=r"broken.jpg"):
        source.load("cat/broken.jpg")
    assert source.load("cat/a.png").image.shape == (20, 30, 3)  # the others still load


def test_unknown_class_lists_the_classes(flat):
    with pytest.raises(UnknownClassError, match="known classes: cat, dog"):
        open_source(flat).ids(class_name="horse")


def test_empty_class_folder_is_an_error_listing_classes(flat):
    (flat / "bird").mkdir()
    with pytest.raises(SprayError, match=r"bird .*classes: bird, cat, dog"):
        open_source(flat)


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(SprayError, match="neither 'demo', 'fashion-mnist' nor an existing folder"):
        open_source(tmp_path / "nope")
    with pytest.raises(SprayError, match="does not exist"):
        ImageFolderSource(tmp_path / "nope")


def test_spec_reopens_and_fingerprint_is_stable_but_tracks_files(flat):
    source = open_source(flat)
    again = open_source(source.spec())
    assert again.ids(None) == source.ids(None) and again.fingerprint() == source.fingerprint()
    _write(flat / "cat" / "new.png")
    assert open_source(flat).fingerprint() != source.fingerprint()
