"""Reading image files and fingerprinting image trees (spray/data/images.py)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from spray.data import file_digests
from spray.data.folder import ImageFolderSource
from spray.data.images import tree_fingerprint


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
