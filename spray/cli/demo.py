"""``spray demo``: the built-in demo world and its model (export, train, info)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from spray.cli.errors import one_line_errors


@click.group()
def demo() -> None:
    """The built-in demo world: synthetic photos with planted Clever Hans shortcuts.

    Classes carry Pascal VOC names (aeroplane, bird, boat, car, cat, dog, horse); images are
    generated on the fly from a seed, so nothing is stored. Planted shortcuts: a copyright
    watermark on ~22% of horses, uniform sky behind aeroplanes (uniform borders after edge
    padding), water below boats. The committed demo model has learnt all three.
    """


@demo.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--layout",
    type=click.Choice(["folder", "voc"]),
    default="folder",
    show_default=True,
    help="folder: DIR/<split>/<class>/<id>.png; voc: JPEGImages/, Annotations/, ImageSets/Main/.",
)
@click.option(
    "--split",
    "splits",
    multiple=True,
    type=click.Choice(["train", "test"]),
    help="Split(s) to write (repeatable). Default: both.",
)
@click.option("--class", "classes", multiple=True, help="Class(es) to write (repeatable). Default: all.")
@click.option("--limit", type=int, default=None, help="At most this many images per class and split.")
@click.option("--seed", type=int, default=0, show_default=True, help="World seed (0 = the model's world).")
@one_line_errors
def export(
    directory: Path, layout: str, splits: tuple[str, ...], classes: tuple[str, ...], limit: int | None, seed: int
) -> None:
    """Write the demo images to DIRECTORY, readable back as `--data DIRECTORY`.

    Also writes shortcuts.json (sample id -> planted shortcut kind).
    """
    from spray.demo.export import export as write
    from spray.demo.world import DemoWorld

    world = DemoWorld(seed=seed)
    for name in classes:
        world.check_class(name)
    count = write(world, directory, layout, splits or None, classes or None, limit)
    click.echo(f"wrote {count} images to {directory} ({layout} layout)")


demo.add_command(export, name="generate")


@demo.command()
@click.option("--epochs", type=int, default=None, help="Training epochs. Default: 10.")
@click.option("--seed", type=int, default=None, help="Training seed. Default: 0.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write demo_model.pt/.json. Default: the package's checkpoint folder.",
)
@click.option("--threads", type=int, default=2, show_default=True, help="torch CPU threads.")
@one_line_errors
def train(epochs: int | None, seed: int | None, out: Path | None, threads: int) -> None:
    """Train the demo CNN on the demo world (CPU, a few minutes) and write its checkpoint.

    Seeded and deterministic for a given torch build; records architecture, classes,
    preprocessing, seed, epochs, the world's fingerprint and per-class test accuracy.
    """
    import dataclasses

    import torch

    from spray.demo.train import TrainConfig
    from spray.demo.train import train as run_training

    torch.set_num_threads(threads)
    config = TrainConfig()
    if epochs is not None:
        config = dataclasses.replace(config, epochs=epochs)
    if seed is not None:
        config = dataclasses.replace(config, seed=seed)
    record = run_training(config, out)
    click.echo(json.dumps(record["test_accuracy"]))
    click.echo(f"trained in {record['train_seconds']} s")


@demo.command()
@one_line_errors
def info() -> None:
    """Print the demo world (classes, sizes, fingerprint) and the committed model's config."""
    from spray.demo.model import CONFIG_FILE, read_config
    from spray.demo.world import DemoWorld

    world = DemoWorld()
    config = read_config()
    click.echo(f"world: {', '.join(world.classes)}; per class {world.counts}; fingerprint {world.fingerprint()}")
    fits = "matches" if config["data_hash"] == world.fingerprint() else "DOES NOT match (retrain)"
    click.echo(f"model: {CONFIG_FILE} (data hash {config['data_hash']} {fits} the world)")
    click.echo("test accuracy: " + ", ".join(f"{k} {v:.2f}" for k, v in config["test_accuracy"].items()))
