"""The demo classifier: a small VGG-style CNN, and its committed checkpoint.

Only layers the LRP engine explains (Conv2d, ReLU, MaxPool2d, Flatten, Linear, Dropout) in
one ``nn.Sequential``; it outputs logits (no softmax layer). Flatten (not global pooling)
keeps where things are, which is how the border and corner shortcuts can be learnt.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

CHECKPOINT_DIR = Path(__file__).parent / "checkpoint"
WEIGHTS_FILE = CHECKPOINT_DIR / "demo_model.pt"
CONFIG_FILE = CHECKPOINT_DIR / "demo_model.json"


def demo_network(n_classes: int, input_size: int, widths: list[int], hidden: int, dropout: float) -> nn.Sequential:
    """Blocks of 3x3 conv + ReLU + 2x2 max-pool with ``widths`` channels, then two dense layers."""
    layers: list[nn.Module] = []
    channels, size = 3, input_size
    for width in widths:
        layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        channels, size = width, size // 2
    layers += [
        nn.Flatten(),
        nn.Linear(channels * size * size, hidden),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, n_classes),
    ]
    return nn.Sequential(*layers)


def network_from_config(config: dict[str, Any]) -> nn.Sequential:
    """The (untrained) network that a checkpoint config describes."""
    arch = config["architecture"]
    return demo_network(
        len(config["class_names"]),
        config["preprocessing"]["crop_size"],
        arch["widths"],
        arch["hidden"],
        arch["dropout"],
    )


def read_config(path: Path = CONFIG_FILE) -> dict[str, Any]:
    """The committed training config (architecture, classes, preprocessing, provenance)."""
    return json.loads(path.read_text())


def load_demo_network(config_path: Path = CONFIG_FILE, weights_path: Path = WEIGHTS_FILE) -> nn.Sequential:
    """The trained demo network in eval mode, weights loaded strictly and safely."""
    network = network_from_config(read_config(config_path))
    network.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
    return network.eval()
