"""A user's own model through the CLI, end to end: a 28x28 grey model on Fashion-MNIST (native
pipeline, official class order), a 32x32 RGB model on an image folder, and a 224x224
ResNet-style network with BatchNorm and residual additions (torchvision pipeline)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from relevance_store import open_store
from spray.cli import cli
from spray.data.fashion_mnist import CLASS_NAMES, DEFAULT_ROOT, FILES, read_idx

MODELS = textwrap.dedent(
    """
    import torch
    from torch import nn


    def fashion():
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(16 * 7 * 7, 10),
        )


    def rgb32():
        torch.manual_seed(1)
        return nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(8 * 8 * 8, 3),
        )


    class Block(nn.Module):
        def __init__(self, channels):
            super().__init__()
            self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(channels)
            self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(channels)

        def forward(self, x):
            out = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(out)) + x)


    class TinyResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 8, 7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(8)
            self.pool = nn.MaxPool2d(3, stride=2, padding=1)
            self.layer1 = nn.Sequential(Block(8), Block(8))
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(8, 2)

        def forward(self, x):
            x = self.pool(torch.relu(self.bn1(self.conv1(x))))
            x = self.avgpool(self.layer1(x))
            return self.fc(torch.flatten(x, 1))


    def resnet224():
        torch.manual_seed(2)
        model = TinyResNet()
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):  # running statistics as a trained net has them
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
        return model
    """
)

needs_fashion_mnist = pytest.mark.skipif(
    not all((DEFAULT_ROOT / name).is_file() for pair in FILES.values() for name in pair),
    reason="needs the Debian package dataset-fashion-mnist (installed by `make test`)",
)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("own") / "my_models.py"
    path.write_text(MODELS)
    return path


@pytest.fixture(scope="module")
def fashion_weights(models) -> Path:
    """The 28x28 grey CNN trained briefly on Fashion-MNIST's official labels (pixels / 255)."""
    namespace: dict = {}
    exec(MODELS, namespace)
    network = namespace["fashion"]()
    images = read_idx(DEFAULT_ROOT / FILES["train"][0])[:12000]
    labels = read_idx(DEFAULT_ROOT / FILES["train"][1])[:12000]
    x = torch.from_numpy(images[:, None].astype(np.float32) / 255.0)
    y = torch.from_numpy(labels.astype(np.int64))
    optimiser = torch.optim.Adam(network.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(2):
        for batch in torch.randperm(len(y), generator=generator).split(128):
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(network(x[batch]), y[batch]).backward()
            optimiser.step()
    weights = models.parent / "fashion.pt"
    torch.save(network.state_dict(), weights)
    return weights


def spray(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


@needs_fashion_mnist
def test_a_28x28_grey_fashion_mnist_model_runs_with_the_native_pipeline(models, fashion_weights, tmp_path):
    code, output = spray(
        "run",
        "--class",
        "shirt",
        "--data",
        "fashion-mnist",
        "--model",
        f"{models}:fashion",
        "--weights",
        fashion_weights,
        "--preprocessing",
        "native",
        "--store",
        tmp_path / "s.zarr",
        "--reports",
        tmp_path / "reports",
    )
    assert code == 0, output
    assert "shirt: 1000 samples" in output and "warning" not in output
    page = tmp_path / "reports" / "class-shirt.html"
    assert page.is_file() and "x/255 to [0, 1]" in page.read_text()  # the resolved pipeline is on the page
    group = open_store(tmp_path / "s.zarr").find_class("shirt")
    prep = group.provenance["preprocessing"]
    assert (prep["channels"], prep["crop_size"], prep["resize"]) == ("grey", None, "none")
    assert group.map_shape == (28, 28) and group.valid.all()
    assert group.provenance["model"]["class_names"] == CLASS_NAMES  # the official label order


@needs_fashion_mnist
def test_the_default_class_order_is_fashion_mnist_s_official_one_and_a_wrong_one_is_flagged(
    models, fashion_weights, tmp_path
):
    common = [
        "--data",
        "fashion-mnist",
        "--model",
        f"{models}:fashion",
        "--weights",
        fashion_weights,
        "--preprocessing",
        "native",
        "--store",
        tmp_path / "s.zarr",
        "--no-full-maps",
    ]
    classes = "trouser,bag,ankle_boot"  # outputs 1, 8, 9; sorted names would point them at 8, 1, 0
    code, output = spray("compute", "--class", classes, *common)
    assert code == 0, output
    store = open_store(tmp_path / "s.zarr")
    shares = [
        float(np.mean(store.class_group(k).predicted == CLASS_NAMES.index(k.class_name))) for k in store.class_keys()
    ]
    assert len(shares) == 3 and min(shares) > 0.6 and "warning" not in output  # mostly true positives
    alphabetical = tmp_path / "alphabetical.txt"
    alphabetical.write_text("\n".join(sorted(CLASS_NAMES)))  # the order the folder convention would give
    code, output = spray("compute", "--class", classes, *common, "--class-names", alphabetical)
    assert code == 0, output
    assert output.count("is the class order right? Pass --class-names") == 3
    assert len(open_store(tmp_path / "s.zarr").class_keys()) == 6  # the two orders do not mix


def test_a_32x32_rgb_model_runs_on_an_image_folder(models, tmp_path):
    rng = np.random.default_rng(0)
    for name in ("ant", "bee", "cow"):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(16):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
                tmp_path / "data" / name / f"{i}.png"
            )
    code, output = spray(
        "run",
        "--class",
        "bee",
        "--data",
        tmp_path / "data",
        "--model",
        f"{models}:rgb32",
        "--preprocessing",
        "native",
        "--store",
        tmp_path / "s.zarr",
        "--reports",
        tmp_path / "r",
    )
    assert code == 0, output
    assert (tmp_path / "r" / "class-bee.html").is_file()
    group = open_store(tmp_path / "s.zarr").find_class("bee")
    assert group.map_shape == (32, 32) and group.provenance["preprocessing"]["channels"] == "rgb"
    assert group.provenance["model"]["class_names"] == ["ant", "bee", "cow"]  # sorted folders


def test_a_224_resnet_with_batchnorm_and_residuals_runs_with_the_torchvision_pipeline(models, tmp_path):
    rng = np.random.default_rng(1)
    for name, size in (("cat", (260, 330)), ("dog", (300, 240))):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(
                tmp_path / "data" / name / f"{i}.png"
            )
    code, output = spray(
        "run",
        "--class",
        "dog",
        "--data",
        tmp_path / "data",
        "--model",
        f"{models}:resnet224",
        "--preprocessing",
        "torchvision",
        "--store",
        tmp_path / "s.zarr",
        "--reports",
        tmp_path / "r",
        "--embedding",
        "tsne",
    )
    assert code == 0, output
    assert (tmp_path / "r" / "class-dog.html").is_file()
    group = open_store(tmp_path / "s.zarr").find_class("dog")
    assert group.map_shape == (224, 224) and group.valid.all()
    assert group.provenance["preprocessing"]["resize"] == "shorter"


def test_a_model_that_does_not_fit_the_pipeline_gets_one_line_naming_the_flags(models, tmp_path):
    (tmp_path / "data" / "a").mkdir(parents=True)
    (tmp_path / "data" / "b").mkdir(parents=True)
    for name in ("a", "b"):
        Image.new("RGB", (28, 28)).save(tmp_path / "data" / name / "0.png")
    result = CliRunner().invoke(
        cli,
        [
            "run",
            "--class",
            "a",
            "--data",
            str(tmp_path / "data"),
            "--model",
            f"{models}:fashion",
            "--store",
            str(tmp_path / "s.zarr"),
        ],
    )
    assert result.exit_code == 1
    assert "fails on a (1, 1, 227, 227) input" in result.output and "--preprocessing" in result.output
    assert "--input-size" in result.output and "Traceback" not in result.output
