"""Reading image files and hashing file trees, shared by the folder and VOC sources."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from spray.data import file_digests
from spray.errors import UnreadableImageError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"})


def is_image_file(path: Path) -> bool:
    """True for a regular file whose suffix PIL commonly reads (hidden files excluded)."""
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def read_rgb(path: Path) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB; a file PIL cannot decode raises UnreadableImageError.

    16-bit images keep their high byte (see ``_rgb8``); an image over Pillow's
    decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``) is unreadable, so that the run
    records it for that sample and goes on, as for a corrupt file.
    """
    try:
        with Image.open(path) as image:
            return _rgb8(image)
    except Image.DecompressionBombError as error:
        raise UnreadableImageError(
            f"cannot read image {path}: it is over Pillow's decompression-bomb limit ({error}); "
            "shrink or delete the file"
        ) from None
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as error:
        raise UnreadableImageError(
            f"cannot read image {path} ({type(error).__name__}: {error}); replace or delete the file"
        ) from None


def _rgb8(image: Image.Image) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a PIL image of any mode.

    Integer grey modes wider than 8 bits (``I;16*`` of 16-bit PNGs and TIFFs, and ``I``, which
    holds them in older Pillow) keep their high byte, ``v >> 8``, clipped to 16 bits: the same
    rule by which Pillow reads 48-bit RGB PNGs, so a grey image and its RGB copy agree.
    ``convert("RGB")`` would clip every value over 255 to white.
    """
    if image.mode.startswith("I;16") or image.mode == "I":
        grey = (np.clip(np.asarray(image, dtype=np.int64), 0, 65535) >> 8).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    return np.asarray(image.convert("RGB"))


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
