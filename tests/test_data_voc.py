"""Pascal VOC source on a small VOC-shaped tree that the test writes (layout of VOC2007)."""

import pytest
from PIL import Image

from spray.data import open_source
from spray.data.voc import VOCSource
from spray.errors import UnknownClassError

# id -> objects (name, difficult); 000003 has only a difficult horse.
OBJECTS = {
    "000001": [("horse", 0), ("person", 0)],
    "000002": [("person", 0)],
    "000003": [("horse", 1)],
    "000004": [("horse", 0), ("horse", 1)],
}
SPLITS = {"trainval": ["000001", "000002"], "test": ["000003", "000004"]}


def _annotation(objects):
    body = "".join(
        f"<object><name>{name}</name><pose>Left</pose><truncated>0</truncated><difficult>{difficult}</difficult>"
        f"<bndbox><xmin>{5 + i}</xmin><ymin>6</ymin><xmax>30</xmax><ymax>20.0</ymax></bndbox></object>"
        for i, (name, difficult) in enumerate(objects)
    )
    return f"<annotation><folder>VOC2007</folder><size><width>40</width><height>24</height></size>{body}</annotation>"


def _flag(objects, name):
    flags = [difficult for n, difficult in objects if n == name]
    return -1 if not flags else (1 if 0 in flags else 0)


@pytest.fixture
def voc(tmp_path):
    root = tmp_path / "VOCdevkit" / "VOC2007"
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (root / sub).mkdir(parents=True)
    for sample_id, objects in OBJECTS.items():
        Image.new("RGB", (40, 24), (int(sample_id), 0, 0)).save(root / "JPEGImages" / f"{sample_id}.jpg")
        (root / "Annotations" / f"{sample_id}.xml").write_text(_annotation(objects))
    main = root / "ImageSets" / "Main"
    for split, ids in SPLITS.items():
        (main / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
        for name in ("horse", "person"):
            (main / f"{name}_{split}.txt").write_text("".join(f"{i} {_flag(OBJECTS[i], name):2d}\n" for i in ids))
    return tmp_path


def test_open_source_finds_the_tree_under_vocdevkit(voc):
    source = open_source(voc)
    assert isinstance(source, VOCSource)
    assert source.classes == ["horse", "person"] and source.splits == ["test", "trainval"]
    assert open_source(voc / "VOCdevkit" / "VOC2007").root == source.root


def test_class_lists_count_difficult_as_non_member_by_default(voc):
    source = open_source(voc)
    assert source.ids("test") == ["000003", "000004"]
    assert source.ids("test", "horse") == ["000004"]
    assert source.ids("trainval", "person") == ["000001", "000002"]
    assert source.ids(None, "horse") == ["000004", "000001"]  # splits in sorted order
    difficult = VOCSource(voc, include_difficult=True)
    assert difficult.ids("test", "horse") == ["000003", "000004"]
    assert difficult.spec()["include_difficult"] is True


def test_labels_from_annotations_agree_with_the_class_lists(voc):
    for include in (False, True):
        source = VOCSource(voc, include_difficult=include)
        for name in source.classes:
            members = set(source.ids(None, name))
            assert members == {i for i in source.ids(None) if name in source.labels(i)}


def test_load_gives_image_and_boxes(voc):
    sample = open_source(voc).load("000004")
    assert sample.image.shape == (24, 40, 3)
    assert sample.labels == frozenset({"horse"})
    assert sample.annotations["boxes"] == [("horse", 5, 6, 30, 20), ("horse", 6, 6, 30, 20)]
    assert sample.annotations["difficult"] == [False, True]


def test_unknown_class_lists_the_classes(voc):
    with pytest.raises(UnknownClassError, match="horse, person"):
        open_source(voc).ids("test", "cow")


def test_corrupt_jpeg_names_the_file(voc):
    from spray.errors import UnreadableImageError

    (voc / "VOCdevkit" / "VOC2007" / "JPEGImages" / "000002.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(UnreadableImageError, match=r"000002.jpg"):
        open_source(voc).load("000002")


def test_spec_and_fingerprint(voc):
    source = open_source(voc)
    assert open_source(source.spec()).fingerprint() == source.fingerprint()
    assert VOCSource(voc, include_difficult=True).fingerprint() != source.fingerprint()
