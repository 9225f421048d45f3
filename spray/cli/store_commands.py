"""``spray info`` and ``spray check``: what a store holds, and whether it is sound.

Both take the store as an argument or as ``--store`` (as ``run``, ``compute`` and the others
do); the default is ./spray-store.zarr, the default of `spray run`.
"""

from __future__ import annotations

import click

from spray.cli.errors import one_line_errors

DEFAULT_STORE = "spray-store.zarr"
STORE_ARGUMENT = click.argument("store", required=False)
STORE_OPTION = click.option(
    "--store", "store_option", metavar="PATH", help=f"The store, as the STORE argument.  [default: ./{DEFAULT_STORE}]"
)


def resolve_store(argument: str | None, option: str | None) -> str:
    """The store named by the argument or ``--store`` (not two different ones), else the default."""
    if argument and option and argument != option:
        raise click.UsageError(f"two stores given ({argument} and --store {option}); give one")
    return argument or option or DEFAULT_STORE


def _size(n_bytes: int | None) -> str:
    if n_bytes is None:
        return "unknown (remote store)"
    size = float(n_bytes)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


@click.command()
@STORE_ARGUMENT
@STORE_OPTION
@one_line_errors
def info(store: str | None, store_option: str | None) -> None:
    """List the models, datasets and classes in STORE with counts, completeness and size on disk.

    STORE (or --store) defaults to ./spray-store.zarr (the default of `spray run`).
    """
    from relevance_store import open_store, summarise

    store = resolve_store(store, store_option)
    opened = open_store(store, "r")
    rows = summarise(opened)
    click.echo(f"{store}: {len(rows)} class group(s), {_size(opened.size_on_disk())} on disk")
    for (model_id, dataset_id), group_rows in _by_model_and_data(rows).items():
        click.echo(
            f"model {model_id[:16]} ({group_rows[0].model_name})  "
            f"dataset {dataset_id[:16]} ({group_rows[0].dataset_name})"
        )
        for row in group_rows:
            state = "complete" if row.chunks_done == row.n_chunks else f"{row.chunks_done}/{row.n_chunks} chunks done"
            extras = f"grids {','.join(map(str, row.grids))}" + (", full maps" if row.full_maps else "")
            click.echo(
                f"  {row.class_name:<20} {row.n_done:>7}/{row.n_samples:<7} maps  {state:<22} "
                f"{row.n_errors} errors  {extras}  {row.analyses} analyses"
            )
    for problem in opened.problems:
        click.echo(f"not listed: {problem}")


def _by_model_and_data(rows: list) -> dict:
    grouped: dict = {}
    for row in rows:
        grouped.setdefault((row.model_id, row.dataset_id), []).append(row)
    return grouped


@click.command()
@STORE_ARGUMENT
@STORE_OPTION
@click.option(
    "--repair",
    is_flag=True,
    help="Mark the done chunks with a problem not done, so that the next `spray compute` or "
    "`spray run` with the same settings recomputes them, and remove analyses that cannot be decoded.",
)
@one_line_errors
def check(store: str | None, store_option: str | None, repair: bool) -> None:
    """Verify STORE: decode every chunk marked done (each carries a checksum) and every stored
    analysis; every done chunk has all its data, and every good row is finite.

    Prints each problem found and exits 1 if there is any (0 when the store is sound), also
    with --repair, which only marks what the next compute or analysis recomputes.
    Samples recorded as failed (unreadable image, non-finite relevance) are not problems.
    """
    from relevance_store import open_store
    from relevance_store.integrity import check_store, repair_store

    store = resolve_store(store, store_option)
    opened = open_store(store, "r+" if repair else "r")
    problems = check_store(opened)
    for problem in problems:
        click.echo(str(problem))
    if repair:
        for line in repair_store(opened, problems):
            click.echo(line)
    n_classes = len(opened.class_keys())
    if problems:
        if repair:
            advice = "recompute as said above"
        elif all(problem.repairable for problem in problems):
            advice = "`spray check --repair` marks them for recomputation by the next `spray compute` or `spray run`"
        else:
            advice = (
                "`spray check --repair` marks the damaged chunks for recomputation; recompute the other classes "
                "named with `spray compute --force`"
            )
        click.echo(f"{store}: {len(problems)} problem(s) in {n_classes} class group(s); {advice}", err=True)
        raise SystemExit(1)
    click.echo(f"{store}: OK ({n_classes} class group(s) checked)")
