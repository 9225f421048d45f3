"""Shared pytest fixtures. Each section belongs to one part of spray; append yours below."""

from __future__ import annotations

import pytest

import spray  # noqa: F401  (first: sets OMP_WAIT_POLICY before any test imports torch)

# ---- relevance store and compute workflow (issue 4) ---------------------------------------


@pytest.fixture(scope="session")
def compute_images(tmp_path_factory):
    """A small image folder: 3 classes x 12 test images, plus one corrupt 'cat' image."""
    from compute_fixtures import write_image_folder

    return write_image_folder(tmp_path_factory.mktemp("compute") / "images", per_class=12, corrupt="cat")


@pytest.fixture(scope="session")
def tiny_model_spec():
    """``load_model(**spec)`` of the tiny test CNN with 32-px inputs (fast in-process LRP)."""
    from compute_fixtures import FACTORY, SMALL_PREPROCESSING

    return {"model": FACTORY, "preprocessing": SMALL_PREPROCESSING}


# ---- data fingerprints (issue 14) ---------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def private_digest_cache(tmp_path_factory):
    """Keep the file-digest cache of data fingerprints (``spray.data.file_digests``) out of the
    user's ~/.cache: every test, and every spray process a test starts, uses a private one."""
    from spray.data.file_digests import CACHE_ENV

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_ENV, str(tmp_path_factory.mktemp("digest-cache")))
        yield
