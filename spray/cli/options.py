"""Command-line options shared by ``spray run``, ``compute``, ``analyze``, ``report`` and others.

Each option maps to one setting (:class:`workflows.config.RunConfig`, its compute and analysis
settings, or a step of the input pipeline); an option left out is passed as None so that the
``--config`` TOML file (or the default) decides.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from spray.preprocess import PAD_MODES, PRESETS
from workflows.config import RunConfig, resolve_config
from workflows.settings import (
    COMPOSITES,
    CPU_BATCH_SIZE,
    GPU_BATCH_SIZE,
    LOCAL_CLUSTER_MIN_MAPS,
    MAX_GRID,
    N_CLUSTERS_RULES,
    SELECTIONS,
    STABILITY_MODES,
)

_DEFAULTS = RunConfig()
_ANALYSIS = _DEFAULTS.analysis


def _csv(_ctx: click.Context, _param: click.Parameter, value: str | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(part.strip() for part in value.split(",") if part.strip())


def _classes(_ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...] | None:
    names = tuple(name for item in value for name in item.split(",") if name)
    return names or None


CLASS_OPTION = click.option(
    "--class",
    "classes",
    multiple=True,
    callback=_classes,
    metavar="NAME",
    help="Class to analyse (repeat or comma-separate for several; 'all' for every class).",
)

MODEL_OPTIONS: list[Callable[[Any], Any]] = [
    click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False),
        default=None,
        help="TOML file with any of these options (flags given here override it).",
    ),
    click.option(
        "--model",
        default=None,
        metavar="MODULE:FACTORY",
        help="`package.module:factory` or `path/file.py:factory` returning an nn.Module that gives "
        "logits. Default: the built-in demo model.",
    ),
    click.option(
        "--weights",
        default=None,
        type=click.Path(dir_okay=False),
        help="state_dict file for --model, loaded with torch.load(weights_only=True).",
    ),
    click.option(
        "--class-names",
        "class_names",
        default=None,
        type=click.Path(dir_okay=False),
        help="File with one class name per model output, in output order. [default: the data set's "
        "label order: Fashion-MNIST's official order, VOC's 20 classes, an image folder's sorted "
        "subfolders]",
    ),
    click.option(
        "--data",
        default=None,
        help=f"'demo', 'fashion-mnist', an image folder or a Pascal VOC root. [default: {_DEFAULTS.data}]",
    ),
    click.option(
        "--split",
        default=None,
        help=f"Data split to analyse; the thesis used the VOC2007 test set (L2100). [default: {_DEFAULTS.split}]",
    ),
]

PIPELINE_OPTIONS: list[Callable[[Any], Any]] = [
    click.option(
        "--preprocessing",
        default=None,
        type=click.Choice(sorted(PRESETS)),
        help="Input pipeline preset: thesis (longest side 256, edge padding, centre crop 227, ImageNet "
        "mean/std; L2141), torchvision (shorter side 256, centre crop 224, ImageNet mean/std), "
        "native (the image as stored, scaled to [0, 1]: MNIST/CIFAR-sized models). "
        "[default: the demo model's own; thesis for --model]",
    ),
    click.option(
        "--input-size",
        "input_size",
        default=None,
        type=click.IntRange(min=1),
        metavar="N",
        help="Model input side (the centre crop); a resizing preset keeps its resize/crop ratio.",
    ),
    click.option(
        "--channels",
        default=None,
        type=click.Choice(["auto", "grey", "rgb"]),
        help="Input channels; auto reads the model's first layer (1 = grey). [default: auto]",
    ),
    click.option(
        "--mean", default=None, metavar="A,B,C", help="Per-channel mean subtracted after scaling (one value for all)."
    ),
    click.option("--std", default=None, metavar="A,B,C", help="Per-channel std divided by after subtracting the mean."),
    click.option(
        "--value-range",
        "value_range",
        default=None,
        metavar="LOW,HIGH",
        help="Pixel values scaled from 0..255 to LOW..HIGH before mean/std. [default: 0,1]",
    ),
    click.option(
        "--resize",
        default=None,
        type=click.Choice(["longest", "shorter", "none"]),
        help="Which side is resized to --resize-to (none: keep the stored size).",
    ),
    click.option(
        "--resize-to",
        "resize_to",
        default=None,
        type=click.IntRange(min=1),
        metavar="N",
        help="Side length the --resize rule scales to.",
    ),
    click.option(
        "--pad-mode",
        "pad_mode",
        default=None,
        type=click.Choice(sorted(PAD_MODES)),
        help="How a non-square image is made square (the thesis copies the border: edge, L2141).",
    ),
]

STORE_OPTIONS: list[Callable[[Any], Any]] = [
    click.option("--store", default=None, help=f"Zarr store of relevance maps. [default: ./{_DEFAULTS.store}]"),
]

VARIANT_OPTION = click.option(
    "--variant",
    default=None,
    metavar="ID",
    help="Which stored settings to use when the store holds a class under several (model, composite, "
    "pipeline): a prefix of the maps or model id shown by `spray info`.",
)

REPORT_OPTIONS: list[Callable[[Any], Any]] = [
    click.option("--reports", default=None, help=f"Folder for the HTML reports. [default: ./{_DEFAULTS.reports}]"),
]

EXECUTION_OPTIONS: list[Callable[[Any], Any]] = [
    click.option(
        "--scheduler",
        default=None,
        metavar="tcp://HOST:PORT",
        help="Use an existing Dask cluster (the store path must be reachable by its workers). "
        "Default: local worker processes, or this process for small jobs (see --workers).",
    ),
    click.option(
        "--workers",
        default=None,
        type=click.IntRange(min=1),
        help="Local worker processes; 1 computes in this process. [default: this process below "
        f"{LOCAL_CLUSTER_MIN_MAPS:,} maps to compute, where a cluster does not pay for its start-up; "
        "one per core above; one per GPU with several GPUs]",
    ),
    click.option(
        "--device",
        default=None,
        metavar="auto|cpu|cuda[:N]",
        help="Where the model runs; auto uses a GPU when torch sees one. [default: auto]",
    ),
    click.option(
        "--batch-size",
        "batch_size",
        default=None,
        type=click.IntRange(min=1),
        help=f"Images per LRP pass. [default: {CPU_BATCH_SIZE} on CPU, {GPU_BATCH_SIZE} on a GPU]",
    ),
    click.option(
        "--force",
        is_flag=True,
        default=None,
        help="Recompute what the store already has (only the maps of the settings given).",
    ),
    click.option(
        "--wait", is_flag=True, default=None, help="Wait for another run writing the same classes instead of failing."
    ),
]

COMPUTE_OPTIONS: list[Callable[[Any], Any]] = [
    click.option(
        "--composite",
        default=None,
        type=click.Choice(COMPOSITES),
        help="LRP composite: thesis = alpha2-beta1 on conv layers, epsilon 0.01 on dense layers, flat "
        "rule on the first layer (L2106); epsilon_plus_flat (z+ on conv); epsilon. Maps of other "
        "composites are kept side by side. [default: thesis]",
    ),
    click.option(
        "--select",
        "selection",
        default=None,
        type=click.Choice(SELECTIONS),
        help="Samples of a class: true-label members (the thesis's choice, L2100) or those the model "
        "predicts as it. [default: true]",
    ),
    click.option(
        "--no-full-maps",
        "full_maps",
        flag_value=False,
        default=None,
        help="Keep only pooled maps (no full-resolution relevance in the store).",
    ),
    click.option(
        "--layer",
        default=None,
        metavar="MODULE.PATH",
        help="Also keep the relevance at this inner layer's channels (`spray layers` lists them); the "
        "analysis then clusters those channel vectors (SpRAy in feature space, Anders et al. 2022).",
    ),
    *EXECUTION_OPTIONS,
]

ANALYSIS_OPTIONS: list[Callable[[Any], Any]] = [
    click.option(
        "--grid",
        default=None,
        type=click.IntRange(min=1, max=MAX_GRID),
        help=f"Sum-pooling grid G (GxG); thesis 20x20, also 5/10/50 (L2100). [default: {_ANALYSIS.grid}]",
    ),
    click.option(
        "--k",
        default=None,
        type=click.IntRange(min=1),
        help="kNN neighbours. [default: max(2, ceil(ln n)), thesis L2100]",
    ),
    click.option(
        "--n-clusters",
        "n_clusters",
        default=None,
        type=click.IntRange(min=1),
        help="Number of clusters. [default: chosen from the spectrum by --n-clusters-rule]",
    ),
    click.option(
        "--n-clusters-rule",
        "n_clusters_rule",
        default=None,
        type=click.Choice(N_CLUSTERS_RULES),
        help="significant-gap: a gap counts only when clearly larger than in structureless twins of the "
        "class, so a class without structure keeps one cluster; largest-gap: the largest of the first "
        "10 eigengaps (the thesis's reading, SPEC 1.5). [default: significant-gap]",
    ),
    click.option(
        "--min-clusters",
        "min_clusters",
        default=None,
        type=click.IntRange(min=1),
        help="Fewest clusters the automatic count may choose. [default: 1]",
    ),
    click.option(
        "--normalize",
        default=None,
        type=click.Choice(["maxabs", "l2", "none"]),
        help="Per-map scaling before clustering: max|R| (Eq. 2.62, L942) or L2 make the clusters "
        "about where relevance sits, not how confident the model is. [default: none, as the "
        "thesis (L2590)]",
    ),
    click.option(
        "--embedding",
        "embeddings",
        default=None,
        callback=_csv,
        metavar="tsne,umap",
        help="2-D embeddings to draw: t-SNE (perplexity 7, exaggeration 6, L2100) and/or UMAP. [default: tsne,umap]",
    ),
    click.option(
        "--seed",
        default=None,
        type=click.IntRange(min=0),
        help=f"Seed of every random step. [default: {_ANALYSIS.seed}]",
    ),
    click.option(
        "--stability",
        default=None,
        type=click.Choice(STABILITY_MODES),
        help="Refits that check the clusters against other grids and k: full (7), quick (2) or off. "
        f"[default: {_ANALYSIS.stability}]",
    ),
]


def apply(options: list[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    """Decorate a command with a list of click options (in the order listed)."""

    def decorator(func: Any) -> Any:
        for option in reversed(options):
            func = option(func)
        return func

    return decorator


def config_from_flags(config_file: str | None = None, **flags: Any) -> RunConfig:
    """The run configuration: defaults < ``--config`` file < flags given on the command line."""
    return resolve_config(config_file, **flags)
