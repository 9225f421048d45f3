"""Train the demo classifier on the demo world (``spray demo train``).

Multi-class softmax training (cross-entropy on logits) with Adam, seeded, on CPU; the
images go through the same thesis preprocessing (edge padding, L2141) that the analysis
uses, which is what lets the padding shortcut be learnt. Writes the state_dict and a JSON
config with the architecture, class names, preprocessing, seed, epochs, the world's
fingerprint (data hash) and the per-class test accuracy.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from spray.demo.model import CONFIG_FILE, WEIGHTS_FILE, demo_network
from spray.demo.world import DemoWorld
from spray.errors import SprayError
from spray.preprocess import Preprocessing

# The demo model's input: longest side 72, edge padding, 64x64 centre crop - the thesis
# pipeline (256 -> 227, L2141) scaled down so LRP over a class takes seconds on a CPU.
DEMO_PREPROCESSING = Preprocessing(resize_to=72, pad_mode="edge", crop_size=64)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines the trained weights (recorded in the checkpoint config)."""

    seed: int = 0
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    widths: tuple[int, ...] = (16, 32, 64, 64)
    hidden: int = 128
    dropout: float = 0.3
    world_seed: int = 0
    preprocessing: dict[str, Any] = field(default_factory=DEMO_PREPROCESSING.to_dict)


def _input_side(preprocessing: Preprocessing) -> int:
    """The side of the demo model's square input: its preprocessing's crop size."""
    if preprocessing.crop_size is None:
        raise SprayError("the demo model's preprocessing needs an input size (crop_size)")
    return preprocessing.crop_size


def tensors(world: DemoWorld, split: str, preprocessing: Preprocessing, desc: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Preprocessed inputs (N, 3, S, S) and class indices (N,) of a whole split."""
    ids = world.ids(split)
    side = _input_side(preprocessing)
    inputs = np.empty((len(ids), 3, side, side), np.float32)
    targets = np.empty(len(ids), np.int64)
    for row, sample_id in enumerate(tqdm(ids, desc=desc, unit="img", leave=False)):
        sample = world.load(sample_id)
        inputs[row] = preprocessing(sample.image, sample_id)
        targets[row] = world.classes.index(next(iter(sample.labels)))
    return torch.from_numpy(inputs), torch.from_numpy(targets)


def per_class_accuracy(network: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, classes: list[str]) -> dict:
    """Fraction of correctly classified test images of each class."""
    with torch.no_grad():
        predicted = torch.cat([network(batch).argmax(1) for batch in inputs.split(256)])
    return {name: round(float((predicted[targets == i] == i).float().mean()), 4) for i, name in enumerate(classes)}


def train(config: TrainConfig = TrainConfig(), out_dir: Path | None = None) -> dict[str, Any]:
    """Train, evaluate and write ``demo_model.pt`` + ``demo_model.json``; returns the JSON record."""
    started = time.time()
    torch.manual_seed(config.seed)
    world = DemoWorld(seed=config.world_seed)
    preprocessing = Preprocessing.from_dict(config.preprocessing)
    train_x, train_y = tensors(world, "train", preprocessing, "render train")
    test_x, test_y = tensors(world, "test", preprocessing, "render test")
    network = demo_network(
        len(world.classes), _input_side(preprocessing), list(config.widths), config.hidden, config.dropout
    )
    optimiser = torch.optim.Adam(network.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, config.learning_rate * 3, total_steps=config.epochs * -(-len(train_y) // config.batch_size)
    )
    generator = torch.Generator().manual_seed(config.seed)
    for _epoch in tqdm(range(config.epochs), desc="train", unit="epoch"):
        network.train()
        for batch in torch.randperm(len(train_y), generator=generator).split(config.batch_size):
            optimiser.zero_grad()
            nn.functional.cross_entropy(network(train_x[batch]), train_y[batch]).backward()
            optimiser.step()
            schedule.step()
    network.eval()
    record = {
        "architecture": {"widths": list(config.widths), "hidden": config.hidden, "dropout": config.dropout},
        "class_names": world.classes,
        "preprocessing": preprocessing.to_dict(),
        "training": asdict(config) | {"widths": list(config.widths)},
        "data_hash": world.fingerprint(),
        "world": world.spec(),
        "test_accuracy": per_class_accuracy(network, test_x, test_y, world.classes),
        "train_seconds": round(time.time() - started, 1),
        "torch_version": torch.__version__,
    }
    weights, config_file = (
        (WEIGHTS_FILE, CONFIG_FILE)
        if out_dir is None
        else (Path(out_dir) / WEIGHTS_FILE.name, Path(out_dir) / CONFIG_FILE.name)
    )
    weights.parent.mkdir(parents=True, exist_ok=True)
    torch.save(network.state_dict(), weights)
    config_file.write_text(json.dumps(record, indent=2) + "\n")
    return record
