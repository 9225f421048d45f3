"""Image sources: one interface over the demo world, Fashion-MNIST, image folders and VOC trees.

``open_source`` turns what a user types (``demo``, ``fashion-mnist``, a folder path) or a
source's own :meth:`~spray.data.ImageSource.spec` (on a Dask worker) into a source.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from spray.data.base import ImageSource, Sample
from spray.errors import SprayError

__all__ = ["ImageSource", "Sample", "open_source"]


def open_source(spec: str | dict[str, Any] | os.PathLike) -> ImageSource:
    """The source named by ``spec``: "demo", "fashion-mnist", a folder or VOC root, or a spec dict.

    A folder is read as a Pascal VOC tree when it (or its ``VOCdevkit/VOC*``) holds
    ``JPEGImages/``, ``Annotations/`` and ``ImageSets/Main/``, else as an ImageFolder layout.
    """
    if isinstance(spec, dict):
        return _from_dict(spec)
    if spec == "demo":
        return _from_dict({"kind": "demo"})
    if spec == "fashion-mnist":
        return _from_dict({"kind": "fashion-mnist"})
    from spray.data.voc import find_voc_root

    path = Path(spec).expanduser()
    if not path.is_dir():
        raise SprayError(
            f"data source {str(spec)!r} is neither 'demo', 'fashion-mnist' nor an existing folder; "
            "give one of those (an image folder with one subfolder per class, or a VOC root)"
        )
    kind = "voc" if find_voc_root(path) is not None else "folder"
    return _from_dict({"kind": kind, "root": str(path)})


def _from_dict(spec: dict[str, Any]) -> ImageSource:
    options = {key: value for key, value in spec.items() if key != "kind"}
    kind = spec.get("kind")
    if kind == "demo":
        from spray.demo.world import DemoWorld

        return DemoWorld(**options)
    if kind == "fashion-mnist":
        from spray.data.fashion_mnist import FashionMNISTSource

        return FashionMNISTSource(**options)
    if kind == "folder":
        from spray.data.folder import ImageFolderSource

        return ImageFolderSource(**options)
    if kind == "voc":
        from spray.data.voc import VOCSource

        return VOCSource(**options)
    raise SprayError(f"unknown data source kind {kind!r} in {spec}; use demo, fashion-mnist, folder or voc")
