"""An image folder in the usual ImageFolder layout: one subfolder per class.

If the root's subfolders are split names (``train/`` and ``test/``, or just one of them, or
``val/``), each is such a layout and names a split; otherwise everything is the single
split ``"all"``. Sample ids are the image paths
relative to the root (POSIX), e.g. ``test/horse/0001.jpg``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from spray.data.base import ImageSource, Sample
from spray.data.images import is_image_file, read_rgb, tree_fingerprint
from spray.errors import SprayError

SPLIT_FOLDERS = ("train", "val", "test")


class ImageFolderSource(ImageSource):
    """Images under ``root/<class>/`` (or ``root/<split>/<class>/``), labelled by their folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise SprayError(f"image folder {self.root} does not exist; give a folder with one subfolder per class")
        self.name = f"folder {self.root}"
        top = {p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")}
        has_splits = bool(top) and top <= set(SPLIT_FOLDERS)
        self.splits = [s for s in SPLIT_FOLDERS if s in top] if has_splits else ["all"]
        self._members: dict[str, dict[str, list[str]]] = {}  # split -> class -> ids
        for split in self.splits:
            split_root = self.root / split if has_splits else self.root
            folders = sorted(p for p in split_root.iterdir() if p.is_dir() and not p.name.startswith("."))
            self._members[split] = {
                folder.name: sorted(p.relative_to(self.root).as_posix() for p in folder.rglob("*") if is_image_file(p))
                for folder in folders
            }
        self.classes = sorted({name for members in self._members.values() for name in members})
        if not self.classes:
            raise SprayError(
                f"image folder {self.root} has no class subfolders; put each class's images in root/<class>/"
            )
        empty = [name for name in self.classes if not any(m.get(name) for m in self._members.values())]
        if empty:
            raise SprayError(
                f"class folder(s) {', '.join(empty)} in {self.root} hold no images; add images or remove them "
                f"(classes: {', '.join(self.classes)})"
            )
        self._label = {i: name for members in self._members.values() for name, ids in members.items() for i in ids}

    def _ids(self, split: str | None, class_name: str | None) -> list[str]:
        splits = self.splits if split is None else [split]
        classes = self.classes if class_name is None else [class_name]
        return [i for s in splits for c in classes for i in self._members[s].get(c, [])]

    def _label_of(self, sample_id: str) -> str:
        if sample_id not in self._label:
            raise SprayError(f"{sample_id!r} is not an image of {self.name}; ids are paths relative to the root")
        return self._label[sample_id]

    def labels(self, sample_id: str) -> frozenset[str]:
        return frozenset({self._label_of(sample_id)})

    def load(self, sample_id: str) -> Sample:
        label = self._label_of(sample_id)
        return Sample(sample_id, read_rgb(self.root / sample_id), frozenset({label}), {})

    def fingerprint(self) -> str:
        return tree_fingerprint(self.root, [self.root / i for i in self._label], "folder")

    def spec(self) -> dict[str, Any]:
        return {"kind": "folder", "root": str(self.root)}
