"""``spray report``: write the HTML reports from the store alone (nothing is recomputed)."""

from __future__ import annotations

import click

from spray.cli.errors import one_line_errors
from spray.cli.options import REPORT_OPTIONS, STORE_OPTIONS, VARIANT_OPTION, apply
from spray.errors import SprayError
from workflows.config import RunConfig


@click.command()
@apply(STORE_OPTIONS + REPORT_OPTIONS + [VARIANT_OPTION])
@one_line_errors
def report(store, reports, variant) -> None:
    """Write a class page per analysed class and the index page ranking the classes (Fig. 6.5).

    Each class page shows its latest stored analysis. The pages open offline from disk. When
    the store holds maps of several settings (models, composites, pipelines), the pages show
    the most recently analysed ones, or those --variant names (see `spray info`).
    """
    from relevance_store import open_store
    from relevance_store.tags import tags_by_class
    from reports.from_store import write_reports

    defaults = RunConfig()
    store, reports = store or defaults.store, reports or defaults.reports
    opened = open_store(store, "r")
    groups = [g for g in (opened.class_group(key) for key in opened.class_keys()) if g.analysis_hashes()]
    if variant is not None:
        groups = [g for g in groups if g.key.maps_id.startswith(variant) or g.key.model_id.startswith(variant)]
    if not groups:
        raise SprayError(
            f"store {store} holds no analysed class"
            + (f" under --variant {variant}" if variant else "")
            + "; run `spray analyze --class NAME` first"
        )
    variants: dict[tuple, float] = {}
    for group in groups:  # the time of each variant's newest analysis
        variants[group.key[:3]] = max(variants.get(group.key[:3], 0.0), group.read_analysis().written_at)
    chosen = max(variants, key=lambda key: variants[key])
    if len(variants) > 1:
        others = ", ".join(key[2][:8] for key in variants if key != chosen)
        click.echo(
            f"the store holds analyses of {len(variants)} settings; showing the latest ({chosen[2][:8]}); "
            f"others: {others} (pick one with --variant ID)"
        )
    groups = [g for g in groups if g.key[:3] == chosen]
    tags = tags_by_class(opened, [g.key.class_name for g in groups])
    for path in write_reports(groups, reports, provenance={"store": str(store), "maps settings": chosen[2]}, tags=tags):
        click.echo(f"wrote {path.resolve()}")
