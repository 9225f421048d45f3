"""Reading image files and hashing file trees, shared by the folder and VOC sources."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

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
    """Hex digest of the files' relative paths and sizes (cheap for a large tree) plus ``extra``.

    Sizes rather than contents: hashing every byte of VOC (~900 MB) on each run would cost
    more than the analysis; an edit that changes an image almost always changes its size.
    """
    digest = hashlib.sha256(repr(extra).encode())
    for path in sorted(files):
        digest.update(f"{path.relative_to(root).as_posix()}\0{path.stat().st_size}\n".encode())
    return digest.hexdigest()[:16]
