"""``spray report``: write the HTML reports from the store alone (nothing is recomputed)."""

from __future__ import annotations

import click

from spray.cli.errors import one_line_errors
from spray.cli.options import REPORT_OPTIONS, STORE_OPTIONS, apply
from spray.errors import SprayError
from workflows.config import RunConfig


@click.command()
@apply(STORE_OPTIONS + REPORT_OPTIONS)
@one_line_errors
def report(store, reports) -> None:
    """Write a class page per analysed class and the index page ranking the classes (Fig. 6.5).

    Each class page shows its latest stored analysis. The pages open offline from disk.
    """
    from relevance_store import open_store
    from reports.from_store import write_reports

    defaults = RunConfig()
    store, reports = store or defaults.store, reports or defaults.reports
    opened = open_store(store, "r")
    groups = [g for g in (opened.class_group(key) for key in opened.class_keys()) if g.analysis_hashes()]
    if not groups:
        raise SprayError(f"store {store} holds no analysed class; run `spray analyze --class NAME` first")
    for path in write_reports(groups, reports, provenance={"store": str(store)}):
        click.echo(f"wrote {path.resolve()}")
