"""Write the demo world to disk as an image folder or a Pascal VOC tree (``spray demo export``).

The exported tree reads back with :func:`spray.data.open_source`, so the demo doubles as a
worked example of both layouts. ``shortcuts.json`` lists the samples that carry a planted
shortcut (id -> kind), the ground truth that the file layouts themselves cannot hold.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from xml.etree import ElementTree

from PIL import Image
from tqdm import tqdm

from spray.demo.world import DemoWorld

LAYOUTS = ("folder", "voc")


def export(
    world: DemoWorld,
    out: Path,
    layout: str = "folder",
    splits: Iterable[str] | None = None,
    classes: Iterable[str] | None = None,
    limit: int | None = None,
) -> int:
    """Write (at most ``limit`` per class and split) images; returns how many were written."""
    out = Path(out)
    splits = list(splits or world.splits)
    classes = list(classes or world.classes)
    shortcuts: dict[str, str] = {}
    lists: dict[str, list[str]] = {}  # VOC: split -> ids
    written = 0
    for split in splits:
        ids = [i for c in classes for i in world.ids(split, c)[:limit]]
        lists[split] = ids
        for sample_id in tqdm(ids, desc=f"export {split}", unit="img"):
            sample = world.load(sample_id)
            (class_name,) = sample.labels
            if layout == "voc":
                _write_voc_sample(out, sample_id, sample.image, sample.annotations["boxes"])
            else:
                path = out / split / class_name / f"{sample_id}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(sample.image).save(path)
            if sample.annotations["shortcut"]:
                shortcuts[sample_id] = sample.annotations["shortcut_kind"]
            written += 1
    if layout == "voc":
        _write_voc_lists(out, world, lists, classes)
    out.mkdir(parents=True, exist_ok=True)
    (out / "shortcuts.json").write_text(json.dumps(shortcuts, indent=1, sort_keys=True) + "\n")
    return written


def _write_voc_sample(out: Path, sample_id: str, image, boxes) -> None:
    for sub in ("JPEGImages", "Annotations"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(out / "JPEGImages" / f"{sample_id}.jpg", quality=95)
    root = ElementTree.Element("annotation")
    ElementTree.SubElement(root, "filename").text = f"{sample_id}.jpg"
    size = ElementTree.SubElement(root, "size")
    for key, value in (("width", image.shape[1]), ("height", image.shape[0]), ("depth", 3)):
        ElementTree.SubElement(size, key).text = str(value)
    for name, *corners in boxes:
        obj = ElementTree.SubElement(root, "object")
        ElementTree.SubElement(obj, "name").text = name
        ElementTree.SubElement(obj, "difficult").text = "0"
        box = ElementTree.SubElement(obj, "bndbox")
        for key, value in zip(("xmin", "ymin", "xmax", "ymax"), corners, strict=True):
            ElementTree.SubElement(box, key).text = str(value)
    ElementTree.ElementTree(root).write(out / "Annotations" / f"{sample_id}.xml")


def _write_voc_lists(out: Path, world: DemoWorld, lists: dict[str, list[str]], classes: list[str]) -> None:
    main = out / "ImageSets" / "Main"
    main.mkdir(parents=True, exist_ok=True)
    for split, ids in lists.items():
        (main / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
        for class_name in classes:
            rows = [f"{i} {1 if class_name in world.labels(i) else -1:2d}\n" for i in ids]
            (main / f"{class_name}_{split}.txt").write_text("".join(rows))
