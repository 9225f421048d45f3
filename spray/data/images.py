"""Reading image files and hashing file trees, shared by the folder and VOC sources."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from spray.data import file_digests
from spray.errors import UnreadableImageError

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
)


def is_image_file(path: Path) -> bool:
    """True for a regular file whose suffix PIL commonly reads (hidden files excluded)."""
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def read_rgb(path: Path) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB; a file PIL cannot decode raises UnreadableImageError."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as error:
        raise UnreadableImageError(
            f"cannot read image {path} ({type(error).__name__}: {error}); replace or delete the file"
        ) from None


def tree_fingerprint(root: Path, files: Iterable[Path], *extra: object) -> str:
    """Hex digest of the files' relative paths and contents, plus ``extra``.

    Contents, not sizes: an image edited in place keeps its size (issue 14). Each file's
    digest is cached by its size, times and inode (:mod:`spray.data.file_digests`, which
    gives the measured cost): a tree is read in full once, afterwards only stat-ed.
    """
    ordered = sorted(files)
    digest = hashlib.sha256(repr(("content", *extra)).encode())
    for path, content in zip(ordered, file_digests.digests(ordered), strict=True):
        digest.update(f"{path.relative_to(root).as_posix()}\0{content}\n".encode())
    return digest.hexdigest()[:16]
