"""Command-line options shared by ``spray run``, ``compute``, ``analyze``, ``report`` and others.

Each option maps to one :class:`workflows.config.RunConfig` field; an option left out is
passed as None so that the ``--config`` TOML file (or the default) decides.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from workflows.compute_options import LOCAL_CLUSTER_MIN_MAPS
from workflows.config import RunConfig, resolve_config

_DEFAULTS = RunConfig()


def _csv(_ctx: click.Context, _param: click.Parameter, value: str | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(part.strip() for part in value.split(",") if part.strip())


def _classes(_ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...] | None:
    names = tuple(name for item in value for name in item.split(",") if name)
    return names or None


CLASS_OPTION = click.option(
    "--class", "classes", multiple=True, callback=_classes, metavar="NAME",
    help="Class to analyse (repeat or comma-separate for several; 'all' for every class).",
)

MODEL_OPTIONS: list[Callable[[Any], Any]] = [
    click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
                 help="TOML file with any of these options (flags given here override it)."),
    click.option("--model", default=None, metavar="MODULE:FACTORY",
                 help="`package.module:factory` or `path/file.py:factory` returning an nn.Module. "
                      "Default: the built-in demo model."),
    click.option("--weights", default=None, type=click.Path(dir_okay=False),
                 help="state_dict file for --model, loaded with torch.load(weights_only=True)."),
    click.option("--class-names", "class_names", default=None, type=click.Path(dir_okay=False),
                 help="File with one class name per model output (default: the data set's classes)."),
    click.option("--data", default=None,
                 help=f"'demo', 'fashion-mnist', an image folder or a Pascal VOC root. [default: {_DEFAULTS.data}]"),
    click.option("--split", default=None,
                 help=f"Data split to analyse; the thesis used the VOC2007 test set (L2100). [default: {_DEFAULTS.split}]"),
]

STORE_OPTIONS: list[Callable[[Any], Any]] = [
    click.option("--store", default=None, help=f"Zarr store of relevance maps. [default: ./{_DEFAULTS.store}]"),
]

REPORT_OPTIONS: list[Callable[[Any], Any]] = [
    click.option("--reports", default=None, help=f"Folder for the HTML reports. [default: ./{_DEFAULTS.reports}]"),
]

COMPUTE_OPTIONS: list[Callable[[Any], Any]] = [
    click.option("--scheduler", default=None, metavar="tcp://HOST:PORT",
                 help="Use an existing Dask cluster (the store path must be reachable by its workers). "
                      "Default: local worker processes, or this process for small jobs (see --workers)."),
    click.option("--workers", default=None, type=click.IntRange(min=1),
                 help="Local worker processes; 1 computes in this process. [default: this process below "
                      f"{LOCAL_CLUSTER_MIN_MAPS:,} maps to compute, where a cluster does not pay for its start-up; "
                      "one per core above]"),
    click.option("--no-full-maps", "full_maps", flag_value=False, default=None,
                 help="Keep only pooled maps (no full-resolution relevance in the store)."),
    click.option("--force", is_flag=True, default=None, help="Recompute what the store already has."),
]

ANALYSIS_OPTIONS: list[Callable[[Any], Any]] = [
    click.option("--grid", default=None, type=click.IntRange(min=1),
                 help=f"Sum-pooling grid G (GxG); thesis 20x20, also 5/10/50 (L2100). [default: {_DEFAULTS.grid}]"),
    click.option("--k", default=None, type=click.IntRange(min=1),
                 help="kNN neighbours. [default: max(2, ceil(ln n)), thesis L2100]"),
    click.option("--n-clusters", "n_clusters", default=None, type=click.IntRange(min=1),
                 help="Number of clusters. [default: the largest eigengap among the first 10 eigenvalues]"),
    click.option("--min-clusters", "min_clusters", default=None, type=click.IntRange(min=1),
                 help="Fewest clusters the automatic count may choose (1 = plain largest-gap rule). [default: 2]"),
    click.option("--normalize", default=None, type=click.Choice(["maxabs", "l2", "none"]),
                 help="Per-map scaling before clustering: max|R| (Eq. 2.62, L942) or L2 make the clusters "
                      "about where relevance sits, not how confident the model is. [default: none, as the "
                      "thesis (L2590)]"),
    click.option("--embedding", "embeddings", default=None, callback=_csv, metavar="tsne,umap",
                 help="2-D embeddings to draw: t-SNE (perplexity 7, exaggeration 6, L2100) and/or UMAP. "
                      "[default: tsne,umap]"),
    click.option("--seed", default=None, type=int, help=f"Seed of every random step. [default: {_DEFAULTS.seed}]"),
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
