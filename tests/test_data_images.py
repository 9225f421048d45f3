"""Reading image files and fingerprinting image trees (spray/data/images.py)."""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from spray.data import file_digests
from spray.data.folder import ImageFolderSource
from spray.data.images import read_rgb, tree_fingerprint
from spray.errors import UnreadableImageError


@pytest.fixture
def digest_cache(tmp_path, monkeypatch):
    """A private content-digest cache that caches files however young (no racy window)."""
    monkeypatch.setenv(file_digests.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(file_digests, "RACY_WINDOW_NS", 0)
    return tmp_path / "cache"


@pytest.fixture
def bmp_tree(tmp_path):
    root = tmp_path / "images"
    (root / "cat").mkdir(parents=True)
    pixels = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(root / "cat" / "a.bmp")
    Image.fromarray(pixels[::-1]).save(root / "cat" / "b.bmp")
    return root


def invert_in_place_keeping_size_and_mtime(path):
    before = os.stat(path)
    inverted = 255 - np.asarray(Image.open(path))
    Image.fromarray(inverted).save(path)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # as `touch -r` or a careless copy would
    assert os.stat(path).st_size == before.st_size and os.stat(path).st_mtime_ns == before.st_mtime_ns


def test_an_image_inverted_in_place_with_the_same_size_gets_another_fingerprint(bmp_tree, digest_cache):
    source = ImageFolderSource(bmp_tree)
    before = source.fingerprint()
    assert ImageFolderSource(bmp_tree).fingerprint() == before  # stable, and now cached
    invert_in_place_keeping_size_and_mtime(bmp_tree / "cat" / "a.bmp")
    assert ImageFolderSource(bmp_tree).fingerprint() != before


def test_unchanged_files_are_not_read_again_and_the_cache_changes_no_digest(bmp_tree, digest_cache, monkeypatch):
    files = sorted(bmp_tree.rglob("*.bmp"))
    first = tree_fingerprint(bmp_tree, files)
    hashed = []
    real = file_digests.content_digest
    monkeypatch.setattr(file_digests, "content_digest", lambda path: hashed.append(path) or real(path))
    assert tree_fingerprint(bmp_tree, files) == first and hashed == []
    monkeypatch.setenv(file_digests.CACHE_ENV, "")  # no cache: every file read, the same digest
    assert tree_fingerprint(bmp_tree, files) == first and len(hashed) == 2


def test_files_younger_than_the_racy_window_are_hashed_every_time(bmp_tree, digest_cache, monkeypatch):
    monkeypatch.setattr(file_digests, "RACY_WINDOW_NS", 3600 * 10**9)
    files = sorted(bmp_tree.rglob("*.bmp"))
    tree_fingerprint(bmp_tree, files)
    hashed = []
    real = file_digests.content_digest
    monkeypatch.setattr(file_digests, "content_digest", lambda path: hashed.append(path) or real(path))
    tree_fingerprint(bmp_tree, files)
    assert len(hashed) == 2  # a same-size edit within the file system's time resolution cannot hide


def test_an_unusable_cache_folder_only_costs_speed(bmp_tree, tmp_path, monkeypatch):
    files = sorted(bmp_tree.rglob("*.bmp"))
    monkeypatch.setenv(file_digests.CACHE_ENV, "")
    expected = tree_fingerprint(bmp_tree, files)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(file_digests.CACHE_ENV, str(blocker / "cache"))
    assert tree_fingerprint(bmp_tree, files) == expected


def _png_rgb48(path, rgb16: np.ndarray) -> None:
    """Write a 48-bit RGB PNG by hand (Pillow cannot write one)."""
    height, width, _ = rgb16.shape

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\0" + row.astype(">u2").tobytes() for row in rgb16)
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    )


SIXTEEN_BIT = np.array([[0, 255, 256, 4096], [32767, 32768, 65280, 65535]], dtype=np.uint16)


def test_a_16_bit_grey_png_is_scaled_to_8_bits_not_clipped_to_white(tmp_path):
    Image.fromarray(SIXTEEN_BIT).save(tmp_path / "grey16.png")
    assert Image.open(tmp_path / "grey16.png").mode == "I;16"
    pixels = read_rgb(tmp_path / "grey16.png")
    assert pixels.dtype == np.uint8 and pixels.shape == (2, 4, 3)
    assert (pixels == pixels[..., :1]).all()  # grey stays grey
    proportional = SIXTEEN_BIT.astype(float) * 255 / 65535
    assert np.abs(pixels[..., 0] - proportional).max() <= 1  # an 8-bit copy of the image, not 255 everywhere
    assert pixels[0, 0, 0] == 0 and pixels[1, 3, 0] == 255


def test_a_48_bit_rgb_png_is_scaled_to_8_bits_and_matches_its_grey_twin(tmp_path):
    rgb16 = np.stack([SIXTEEN_BIT, SIXTEEN_BIT[::-1], np.full_like(SIXTEEN_BIT, 257 * 7)], axis=-1)
    _png_rgb48(tmp_path / "rgb48.png", rgb16)
    pixels = read_rgb(tmp_path / "rgb48.png")
    assert pixels.dtype == np.uint8 and pixels.shape == (2, 4, 3)
    assert np.abs(pixels - rgb16.astype(float) * 255 / 65535).max() <= 1
    Image.fromarray(SIXTEEN_BIT).save(tmp_path / "grey16.png")
    np.testing.assert_array_equal(pixels[..., 0], read_rgb(tmp_path / "grey16.png")[..., 0])


def test_an_image_over_the_decompression_bomb_limit_is_an_unreadable_image(tmp_path, monkeypatch):
    Image.new("RGB", (100, 100)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 10,000 pixels: over twice the limit
    with pytest.raises(UnreadableImageError, match=r"bomb\.png.*decompression-bomb limit"):
        read_rgb(tmp_path / "bomb.png")


def test_a_decompression_bomb_is_recorded_per_sample_and_the_compute_goes_on(tmp_path, monkeypatch, tiny_model_spec):
    from compute_fixtures import write_image_folder

    from relevance_store import open_store
    from workflows.compute import compute_classes

    images = write_image_folder(tmp_path / "images", per_class=4)
    Image.new("RGB", (300, 300), (9, 9, 9)).save(images / "test" / "dog" / "dog900-huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20_000)  # the others have 1,320 pixels
    (result,) = compute_classes(
        tmp_path / "s.zarr",
        "dog",
        model_spec=tiny_model_spec,
        source_spec=str(images),
        chunk_size=5,
        workers=1,
        progress=False,
    )
    group = open_store(tmp_path / "s.zarr").class_group(result.key)
    assert group.complete and result.n_errors == 1 and group.valid.sum() == 4
    assert "decompression-bomb limit" in group.errors["test/dog/dog900-huge.png"]
