"""Fashion-MNIST from the Debian package ``dataset-fashion-mnist`` (real photos of things).

The package installs the four gzipped IDX files of Zalando's release under
``/usr/share/datasets/fashion-mnist/``; nothing is downloaded. Images are 28x28 grey,
returned as RGB uint8. Class names are the official ones made safe as store keys
(``T-shirt/top`` -> ``tshirt_top``); ``classes`` lists them sorted, ``class_order`` in the
official label order (0 = T-shirt/top ... 9 = Ankle boot), the order of a model's outputs.
Sample ids: ``train-00042``, ``test-01234``.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from spray.data.base import ImageSource, Sample
from spray.errors import SprayError

DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
CLASS_NAMES = ["tshirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot"]


def read_idx(path: Path) -> np.ndarray:
    """A gzipped IDX file (big-endian header: magic, dimension sizes; then uint8 data) as an array."""
    data = gzip.decompress(path.read_bytes())
    if data[:2] != b"\0\0" or data[2] != 0x08:
        raise SprayError(f"{path} is not an unsigned-byte IDX file; reinstall dataset-fashion-mnist")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


class FashionMNISTSource(ImageSource):
    """The 60k train and 10k test images of Fashion-MNIST, read once and kept in memory."""

    def __init__(self, root: str | Path = DEFAULT_ROOT) -> None:
        self.root = Path(root)
        missing = [name for pair in FILES.values() for name in pair if not (self.root / name).is_file()]
        if missing:
            raise SprayError(
                f"Fashion-MNIST files {', '.join(missing)} are missing in {self.root}; "
                "install them with `apt-get install dataset-fashion-mnist`"
            )
        self.name = "fashion-mnist"
        self.classes = sorted(CLASS_NAMES)
        self.splits = list(FILES)
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._fingerprint: str | None = None

    @property
    def class_order(self) -> list[str]:
        """The official label order (label i of the IDX files is output i of a model trained on them)."""
        return list(CLASS_NAMES)

    def _split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        if split not in self._arrays:
            images, labels = (read_idx(self.root / name) for name in FILES[split])
            self._arrays[split] = images, labels
        return self._arrays[split]

    def _ids(self, split: str | None, class_name: str | None) -> list[str]:
        ids = []
        for s in self.splits if split is None else [split]:
            labels = self._split(s)[1]
            rows = range(len(labels)) if class_name is None else np.flatnonzero(labels == CLASS_NAMES.index(class_name))
            ids += [f"{s}-{row:05d}" for row in rows]
        return ids

    def _locate(self, sample_id: str) -> tuple[np.ndarray, str]:
        split, _, row = sample_id.partition("-")
        if split in FILES and row.isdigit() and int(row) < len(self._split(split)[1]):
            images, labels = self._split(split)
            return images[int(row)], CLASS_NAMES[labels[int(row)]]
        raise SprayError(f"{sample_id!r} is not a Fashion-MNIST id; ids look like 'test-01234'")

    def labels(self, sample_id: str) -> frozenset[str]:
        return frozenset({self._locate(sample_id)[1]})

    def load(self, sample_id: str) -> Sample:
        grey, label = self._locate(sample_id)
        return Sample(sample_id, np.repeat(grey[:, :, None], 3, axis=2), frozenset({label}), {})

    def fingerprint(self) -> str:
        if self._fingerprint is None:  # hashing the 30 MB of files takes ~0.1 s: once is enough
            digest = hashlib.sha256(b"fashion-mnist")
            for name in (name for pair in FILES.values() for name in pair):
                digest.update((self.root / name).read_bytes())
            self._fingerprint = digest.hexdigest()[:16]
        return self._fingerprint

    def spec(self) -> dict[str, Any]:
        return {"kind": "fashion-mnist", "root": str(self.root)}
