"""A Pascal VOC tree (the thesis's data, VOC2007 test, L2100), read as published.

Layout: ``JPEGImages/<id>.jpg``, ``Annotations/<id>.xml`` (objects with name, bndbox,
difficult) and ``ImageSets/Main/<class>_<split>.txt`` (lines ``<id> 1|-1|0``; 0 = only
difficult objects). Splits are the ``ImageSets/Main/<split>.txt`` lists. A class's members
are the ids marked 1, plus those marked 0 when ``include_difficult`` is set; an image's
labels follow the same rule from its annotation, so both views agree. The root may be the
``VOC2007`` folder itself or a folder holding ``VOCdevkit/VOC2007``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

from spray.data.base import ImageSource, Sample
from spray.data.images import read_rgb, tree_fingerprint
from spray.errors import SprayError

VOC_CLASSES = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
"""The 20 Pascal VOC classes in the official order of the devkit (``VOCcode/VOCinit.m``)."""
CLASS_LIST = re.compile(r"^(?P<name>.+)_(?P<split>[^_]+)\.txt$")


def is_voc_root(path: Path) -> bool:
    """True for a folder that holds JPEGImages/, Annotations/ and ImageSets/Main/."""
    return all((path / sub).is_dir() for sub in ("JPEGImages", "Annotations", "ImageSets/Main"))


def find_voc_root(path: Path) -> Path | None:
    """``path`` itself, or its single ``VOCdevkit/VOC*`` child, if that is a VOC root."""
    if is_voc_root(path):
        return path
    candidates = [p for p in sorted(path.glob("VOCdevkit/VOC*")) if is_voc_root(p)]
    return candidates[0] if len(candidates) == 1 else None


class VOCSource(ImageSource):
    """Images, labels and boxes of a Pascal VOC tree (module docstring)."""

    def __init__(self, root: str | Path, include_difficult: bool = False) -> None:
        given = Path(root).expanduser().resolve()
        found = find_voc_root(given) if given.is_dir() else None
        if found is None:
            raise SprayError(
                f"{given} is not a Pascal VOC folder; it needs JPEGImages/, Annotations/ and ImageSets/Main/"
            )
        self.root, self.include_difficult = found, bool(include_difficult)
        self.name = f"VOC {self.root}"
        self._parsed: dict[str, tuple[tuple[str, int, int, int, int, bool], ...]] = {}
        main = self.root / "ImageSets" / "Main"
        self.splits = sorted(p.stem for p in main.glob("*.txt") if "_" not in p.stem)
        lists = [CLASS_LIST.match(p.name) for p in main.glob("*_*.txt")]
        self.classes = sorted({m["name"] for m in lists if m and m["split"] in self.splits})
        if not self.splits or not self.classes:
            raise SprayError(f"{main} has no <split>.txt or <class>_<split>.txt lists; is this a complete VOC tree?")

    @property
    def class_order(self) -> list[str]:
        """The official 20-class order when the tree holds VOC classes (a model trained on VOC has
        20 outputs even if this tree lists fewer), else the sorted class names."""
        return list(VOC_CLASSES) if set(self.classes) <= set(VOC_CLASSES) else list(self.classes)

    def _read_list(self, name: str) -> list[tuple[str, int]]:
        path = self.root / "ImageSets" / "Main" / f"{name}.txt"
        if not path.is_file():
            raise SprayError(f"VOC list {path} is missing; the classes of this tree are: {', '.join(self.classes)}")
        rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
        return [(row[0], int(row[1]) if len(row) > 1 else 1) for row in rows]

    def _ids(self, split: str | None, class_name: str | None) -> list[str]:
        splits = self.splits if split is None else [split]
        members: dict[str, None] = {}  # ordered set: trainval may repeat train and val ids
        for s in splits:
            name = s if class_name is None else f"{class_name}_{s}"
            for sample_id, flag in self._read_list(name):
                if flag == 1 or (flag == 0 and self.include_difficult):
                    members[sample_id] = None
        return list(members)

    def _boxes(self, sample_id: str) -> tuple[tuple[str, int, int, int, int, bool], ...]:
        if sample_id not in self._parsed:
            self._parsed[sample_id] = self._parse_annotation(sample_id)
        return self._parsed[sample_id]

    def _parse_annotation(self, sample_id: str) -> tuple[tuple[str, int, int, int, int, bool], ...]:
        path = self.root / "Annotations" / f"{sample_id}.xml"
        if not path.is_file():
            raise SprayError(f"{sample_id!r} has no annotation {path}; ids are the names in ImageSets/Main lists")
        boxes: list[tuple[str, int, int, int, int, bool]] = []
        for obj in ElementTree.parse(path).getroot().iter("object"):
            box = obj.find("bndbox")
            if box is None:
                raise SprayError(f"{path} has an object without a bndbox; fix or remove the annotation")
            xmin, ymin, xmax, ymax = (int(float(box.findtext(k, "0"))) for k in ("xmin", "ymin", "xmax", "ymax"))
            boxes.append(
                (
                    obj.findtext("name", "").strip(),
                    xmin,
                    ymin,
                    xmax,
                    ymax,
                    obj.findtext("difficult", "0").strip() == "1",
                )
            )
        return tuple(boxes)

    def labels(self, sample_id: str) -> frozenset[str]:
        return frozenset(b[0] for b in self._boxes(sample_id) if self.include_difficult or not b[5])

    def load(self, sample_id: str) -> Sample:
        boxes = self._boxes(sample_id)
        image = read_rgb(self.root / "JPEGImages" / f"{sample_id}.jpg")
        annotations = {"boxes": [b[:5] for b in boxes], "difficult": [b[5] for b in boxes]}
        return Sample(sample_id, image, self.labels(sample_id), annotations)

    def fingerprint(self) -> str:
        files = [p for sub in ("JPEGImages", "Annotations", "ImageSets/Main") for p in (self.root / sub).iterdir()]
        return tree_fingerprint(self.root, files, "voc", self.include_difficult)

    def spec(self) -> dict[str, Any]:
        return {"kind": "voc", "root": str(self.root), "include_difficult": self.include_difficult}
