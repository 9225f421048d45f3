"""``spray run``: the everyday command (compute, analyse, report; then print the report's path)."""

from __future__ import annotations

import click

from spray.cli.errors import one_line_errors
from spray.cli.options import (
    ANALYSIS_OPTIONS,
    CLASS_OPTION,
    COMPUTE_OPTIONS,
    MODEL_OPTIONS,
    PIPELINE_OPTIONS,
    REPORT_OPTIONS,
    STORE_OPTIONS,
    apply,
    config_from_flags,
)


@click.command()
@CLASS_OPTION
@apply(MODEL_OPTIONS + PIPELINE_OPTIONS + STORE_OPTIONS + REPORT_OPTIONS + COMPUTE_OPTIONS + ANALYSIS_OPTIONS)
@one_line_errors
def run(config_file, classes, **flags) -> None:
    """Find the prediction strategies of a class: LRP maps, spectral clusters, HTML report.

    With no other option it runs on the built-in demo (a small model and image set with
    planted Clever Hans shortcuts), keeps the relevance maps in ./spray-store.zarr and writes
    the reports to ./spray-reports/. Every step resumes: a second run computes nothing new.

    A class with fewer than 3 usable maps is skipped with a line saying why, and the others go
    on (exit status 0); exit status 1 when no class can be analysed or the input is bad, 2 for
    a usage error.

    \b
    Examples:
      spray run --class aeroplane
      spray run --class all
      spray run --class horse --model mynet.py:build --weights mynet.pt --data /data/VOC2007
      spray run --class shirt --data fashion-mnist --model fm.py:build --weights fm.pt --preprocessing native
    """
    config = config_from_flags(config_file, classes=classes, **flags)
    if not config.classes:
        raise click.UsageError("name the class to analyse with --class NAME (or --class all)")
    from workflows.pipeline import run as run_pipeline

    result = run_pipeline(config)
    for outcome in result.outcomes:
        computed = f"{outcome.n_computed} maps computed" if outcome.n_computed else "maps reused"
        analysis = "analysis reused" if outcome.reused_analysis else "analysed"
        click.echo(
            f"{outcome.class_name}: {outcome.n_samples} samples ({computed}, {analysis}), "
            f"{outcome.n_clusters} cluster(s)"
        )
        if outcome.warning:
            click.echo(f"  warning: {outcome.warning}")
    for class_name, reason in result.skipped.items():
        click.echo(f"{class_name}: skipped, {reason}")
    split = ", ".join(f"{stage} {seconds:.1f}s" for stage, seconds in result.timings.items())
    click.echo(f"time: {split}")
    pages = [o.report_page for o in result.outcomes if o.report_page is not None]
    if result.index_page is not None:
        click.echo(f"index: {result.index_page.resolve()}")
    for page in pages:
        click.echo(f"report: {page.resolve()}")
