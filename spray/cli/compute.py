"""``spray compute``: LRP relevance maps for one class, several, or all, into the store."""

from __future__ import annotations

import click

from spray.cli.errors import one_line_errors
from spray.cli.options import (
    CLASS_OPTION,
    COMPUTE_OPTIONS,
    MODEL_OPTIONS,
    PIPELINE_OPTIONS,
    STORE_OPTIONS,
    apply,
    config_from_flags,
)
from workflows.settings import MAX_GRID, ComputeSettings


@click.command()
@CLASS_OPTION
@apply(MODEL_OPTIONS + PIPELINE_OPTIONS + STORE_OPTIONS + COMPUTE_OPTIONS)
@click.option(
    "--grid",
    "grids",
    multiple=True,
    type=click.IntRange(min=1, max=MAX_GRID),
    metavar="G",
    help="Sum-pooling grid GxG to store; repeat for several. [default: 20, thesis L2100]",
)
@click.option(
    "--chunk-size",
    "chunk_size",
    type=click.IntRange(min=1),
    default=None,
    help=f"Samples per store chunk, which is also one task. [default: {ComputeSettings().chunk_size}]",
)
@one_line_errors
def compute(config_file, classes, grids, **flags) -> None:
    """Compute LRP relevance maps for every sample of a class into the Zarr store.

    Resumable: a rerun skips the chunks already done (--force recomputes the maps of these
    settings; maps made with another composite or pipeline are kept beside them). Runs on
    local worker processes (one per core; small jobs run in this process, where a cluster's
    start-up would not pay), or on an existing Dask cluster with --scheduler. Unreadable
    images are skipped and recorded in the store (see `spray info`).
    """
    config = config_from_flags(config_file, classes=classes, grids=grids or None, **flags)
    if not config.classes:
        raise click.UsageError("name the class to compute with --class NAME (or --class all)")
    from workflows.compute import compute_run_classes

    results = compute_run_classes(config)
    for result in results:
        errors = f", {result.n_errors} unreadable or failed (recorded)" if result.n_errors else ""
        click.echo(
            f"{result.key.class_name}: {result.n_samples} samples, {result.n_computed} maps computed now{errors}"
        )
        if result.warning:
            click.echo(f"  warning: {result.warning}")
    click.echo(f"store: {config.store}")
