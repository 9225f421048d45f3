"""``spray compute``: LRP relevance maps for one class, several, or all, into the store."""

from __future__ import annotations

import click

from spray.cli.errors import one_line_errors
from spray.cli.options import CLASS_OPTION, COMPUTE_OPTIONS, MODEL_OPTIONS, STORE_OPTIONS, apply, config_from_flags
from workflows.compute_options import CHUNK_SIZE, SELECTIONS


@click.command()
@CLASS_OPTION
@apply(MODEL_OPTIONS + STORE_OPTIONS + COMPUTE_OPTIONS)
@click.option("--grid", "grids", multiple=True, type=click.IntRange(min=1), metavar="G",
              help="Sum-pooling grid GxG to store; repeat for several. [default: 20, thesis L2100]")
@click.option("--select", "selection", type=click.Choice(SELECTIONS), default="true", show_default=True,
              help="Samples of a class: true-label members (the thesis's choice, L2100) or those the model predicts as it.")
@click.option("--composite", default="thesis", show_default=True,
              help="LRP composite: thesis (alpha2-beta1 conv, eps dense, flat first layer; L2106), "
                   "epsilon_plus_flat or epsilon.")
@click.option("--chunk-size", type=click.IntRange(min=1), default=CHUNK_SIZE, show_default=True,
              help="Samples per store chunk, which is also one task.")
@click.option("--wait", is_flag=True, help="Wait for another run writing the same class instead of failing.")
@one_line_errors
def compute(config_file, classes, model, weights, class_names, data, split, store, scheduler, workers, full_maps,
            force, grids, selection, composite, chunk_size, wait) -> None:
    """Compute LRP relevance maps for every sample of a class into the Zarr store.

    Resumable: a rerun skips the chunks already done (--force recomputes). Runs on local
    worker processes (one per core; small jobs run in this process, where a cluster's
    start-up would not pay), or on an existing Dask cluster with --scheduler. Unreadable
    images are skipped and recorded in the store (see `spray info`).
    """
    from workflows.compute import compute_classes

    config = config_from_flags(config_file, classes=classes, model=model, weights=weights, class_names=class_names,
                               data=data, split=split, store=store, scheduler=scheduler, workers=workers,
                               full_maps=full_maps, force=force)
    if not config.classes:
        raise click.UsageError("name the class to compute with --class NAME (or --class all)")
    results = compute_classes(
        config.store, list(config.classes),
        model_spec=config.model_spec(),
        source_spec=config.data, split=config.split, grids=grids or (config.grid,), full_maps=config.full_maps,
        selection=selection, composite=composite, chunk_size=chunk_size, scheduler=config.scheduler,
        workers=config.workers, force=config.force, wait=wait,
    )
    for result in results:
        errors = f", {result.n_errors} unreadable or failed (recorded)" if result.n_errors else ""
        click.echo(f"{result.key.class_name}: {result.n_samples} samples, {result.n_computed} maps computed now"
                   f"{errors}")
    click.echo(f"store: {config.store}")
