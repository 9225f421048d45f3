"""The committed demo checkpoint matches its config, the trainer defaults and the current world."""

import dataclasses

import numpy as np
import torch

from spray.demo.model import CONFIG_FILE, WEIGHTS_FILE, network_from_config, read_config
from spray.demo.train import DEMO_PREPROCESSING, TrainConfig
from spray.demo.world import CLASSES, DemoWorld


def test_weights_load_strictly_into_the_architecture_of_the_config():
    config = read_config()
    network = network_from_config(config)
    state = torch.load(WEIGHTS_FILE, map_location="cpu", weights_only=True)
    assert network.load_state_dict(state, strict=True)  # raises on any missing/unexpected key
    assert WEIGHTS_FILE.stat().st_size < 5 * 2**20
    layer_types = {type(m).__name__ for m in network.modules()} - {"Sequential"}
    assert layer_types <= {"Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear", "Dropout"}  # what LRP explains


def test_config_records_the_current_world_and_trainer_defaults():
    config = read_config()
    world = DemoWorld(**{k: v for k, v in config["world"].items() if k != "kind"})
    assert config["data_hash"] == world.fingerprint() == DemoWorld().fingerprint(), (
        "the demo world changed since the checkpoint was trained: run `spray demo train`"
    )
    defaults = dataclasses.asdict(TrainConfig()) | {"widths": list(TrainConfig().widths)}
    assert config["training"] == defaults
    assert config["preprocessing"] == DEMO_PREPROCESSING.to_dict()
    assert config["class_names"] == CLASSES
    assert config["architecture"] == {
        "widths": defaults["widths"],
        "hidden": defaults["hidden"],
        "dropout": defaults["dropout"],
    }
    assert set(config["test_accuracy"]) == set(CLASSES) and CONFIG_FILE.is_file()


def test_recorded_accuracy_is_what_the_weights_achieve():
    from spray.models import load_model

    loaded = load_model()
    world = DemoWorld()
    config = read_config()
    for name in ("boat", "car"):  # classes the model gets nearly always right
        ids = world.ids("test", name)[:40]
        x = torch.from_numpy(np.stack([loaded.preprocessing(world.load(i).image, i) for i in ids]))
        with torch.no_grad():
            accuracy = float((loaded.module(x).argmax(1) == CLASSES.index(name)).float().mean())
        assert abs(accuracy - config["test_accuracy"][name]) < 0.15
