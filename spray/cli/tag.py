"""``spray tag``: say once what a cluster is (shortcut, legitimate, unsure); the tag follows it."""

from __future__ import annotations

import datetime
import shlex

import click

from spray.cli.errors import one_line_errors
from spray.cli.options import STORE_OPTIONS, VARIANT_OPTION, apply


@click.command()
@click.option("--class", "class_name", metavar="NAME", help="The class whose cluster is tagged.")
@click.option("--cluster", type=int, metavar="K", help="The cluster's number on the class page.")
@click.option(
    "--as",
    "kind",
    type=click.Choice(["shortcut", "legitimate", "unsure"]),
    help="What a person found the cluster to be.",
)
@click.option("--note", default="", help="Why, in a few words (shown with the tag).")
@click.option(
    "--analysis",
    default=None,
    metavar="HASH",
    help="The analysis the cluster number refers to. [default: the class's latest, as its page shows]",
)
@click.option("--remove", is_flag=True, help="Remove the tag of --class/--cluster instead.")
@click.option("--list", "list_tags", is_flag=True, help="List every tag in the store.")
@apply([*STORE_OPTIONS, VARIANT_OPTION])
@one_line_errors
def tag(class_name, cluster, kind, note, analysis, remove, list_tags, store, variant) -> None:
    """Tag a cluster as a shortcut, a legitimate strategy, or unsure, with a note.

    Tags live in the store beside the analysis. They follow their cluster into later analyses
    and model versions (clusters are matched by prototype, as audits match them), show on the
    class page, the index and audit pages, and change what audits report: a cluster tagged
    legitimate never raises a finding again, a tagged shortcut that is still there is reported
    as still present rather than as new.

    \b
    Examples:
      spray tag --class horse --cluster 1 --as shortcut --note "copyright stamp, bottom left"
      spray tag --list
    """
    from relevance_store import open_store
    from relevance_store.tags import class_tags, remove_tag, tag_cluster, tags_by_class

    location = store or "spray-store.zarr"
    if list_tags:
        opened = open_store(location, "r")
        tags = [t for found in tags_by_class(opened).values() for t in found]
        for t in sorted(tags, key=lambda t: (t.class_name, t.tagged_at)):
            when = datetime.datetime.fromtimestamp(t.tagged_at).strftime("%Y-%m-%d %H:%M")
            click.echo(
                f"{t.class_name}: cluster {t.cluster} of analysis {t.analysis[:8]} (model {t.model_id[:8]}) "
                f"{t.kind}{' - ' + t.note if t.note else ''} [{t.tagged_by}, {when}]"
            )
        click.echo(f"{len(tags)} tag(s) in {location}")
        return
    if class_name is None or cluster is None or (kind is None) == (not remove):
        raise click.UsageError("give --class NAME --cluster K and either --as KIND or --remove (or --list)")
    opened = open_store(location, "r+")
    group = opened.find_class(class_name, variant)
    with opened.writer_lock(group.key):
        if remove:
            gone = remove_tag(group, cluster, analysis)
            click.echo(f"removed the {gone.kind} tag of cluster {cluster} of {class_name!r}")
            return
        given = tag_cluster(group, cluster, kind, note, analysis)
    click.echo(
        f"tagged cluster {given.cluster} of {class_name!r} (analysis {given.analysis[:8]}) as {given.kind}; "
        f"{len(class_tags(opened, class_name))} tag(s) on this class; rewrite its page with "
        f"`spray report --store {shlex.quote(location)}`"
    )
