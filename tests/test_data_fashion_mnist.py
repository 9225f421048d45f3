"""Fashion-MNIST from the Debian package dataset-fashion-mnist (installed by CI)."""

import numpy as np
import pytest

from spray.data import open_source
from spray.data.fashion_mnist import DEFAULT_ROOT, FILES
from spray.errors import SprayError, UnknownClassError

pytestmark = pytest.mark.skipif(
    not all((DEFAULT_ROOT / name).is_file() for pair in FILES.values() for name in pair),
    reason=f"Fashion-MNIST idx files absent under {DEFAULT_ROOT} (apt-get install dataset-fashion-mnist)",
)


@pytest.fixture(scope="module")
def source():
    return open_source("fashion-mnist")


def test_sizes_and_classes_match_the_published_dataset(source):
    assert len(source.classes) == 10 and "ankle_boot" in source.classes
    assert len(source.ids("test")) == 10_000 and len(source.ids("train")) == 60_000
    assert all(len(source.ids("test", name)) == 1000 for name in source.classes)  # balanced test set


def test_images_are_grey_28x28_as_rgb(source):
    sample = source.load("test-00000")
    assert sample.image.shape == (28, 28, 3) and sample.image.dtype == np.uint8
    assert np.array_equal(sample.image[:, :, 0], sample.image[:, :, 2])
    assert sample.labels == frozenset({"ankle_boot"})  # the well-known first test image
    assert sample.image.max() > 200 and sample.image.min() == 0


def test_class_filter_agrees_with_labels(source):
    ids = source.ids("test", "bag")[:50]
    assert all(source.labels(i) == frozenset({"bag"}) for i in ids)


def test_errors_and_spec(source, tmp_path):
    with pytest.raises(UnknownClassError, match="ankle_boot, bag"):
        source.ids("test", "T-shirt/top")
    with pytest.raises(SprayError, match="dataset-fashion-mnist"):
        open_source({"kind": "fashion-mnist", "root": str(tmp_path)})
    assert open_source(source.spec()).labels("train-00001") == source.labels("train-00001")
    assert source.fingerprint() == open_source("fashion-mnist").fingerprint()
