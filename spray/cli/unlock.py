"""``spray unlock``: list and remove the writer and audit locks of a store, after a warning."""

from __future__ import annotations

import click

from spray.cli.errors import one_line_errors
from spray.cli.store_commands import STORE_ARGUMENT, STORE_OPTION, resolve_store
from spray.errors import SprayError

WARNING = (
    "Removing the lock of a run that is still writing lets a second run write the same chunks at the "
    "same time, which can corrupt them. Remove locks only of runs that are gone (killed, or on a host "
    "that is down). Locks are taken over without this command: at once when their process on this host "
    "is gone, 60 s after the last heartbeat when they were taken on another host."
)


@click.command()
@STORE_ARGUMENT
@STORE_OPTION
@click.option("--yes", is_flag=True, help="Remove the locks listed without asking.")
@one_line_errors
def unlock(store: str | None, store_option: str | None, yes: bool) -> None:
    """List the locks of STORE (in STORE.locks/ beside it) and remove them after a warning.

    Each line says which class (or the audit) a lock guards, its process and host, when it
    started, its last heartbeat, and whether its owner still counts as alive.
    """
    from relevance_store.locks import describe_owner, list_locks, locks_folder, owner_is_alive, remove_locks
    from relevance_store.store import is_local, local_path

    store = resolve_store(store, store_option)
    if not is_local(store):
        raise SprayError(f"{store} is not a local store path; locks exist only beside local stores")
    folder = locks_folder(local_path(store))
    locks = list_locks(folder)
    if not locks:
        click.echo(f"{store}: no locks (nothing in {folder})")
        return
    click.echo(f"{store}: {len(locks)} lock(s) in {folder}:")
    alive = 0
    for path, owner in locks:
        if not owner:
            click.echo(f"  {path.name}: unreadable record [stale]")
            continue
        state = "ALIVE: its run seems to be writing" if owner_is_alive(owner, path) else "stale"
        alive += state != "stale"
        click.echo(f"  {path.name}: {owner.get('what', '?')}; {describe_owner(owner, path)} [{state}]")
    click.echo(f"WARNING: {WARNING}", err=True)
    if alive:
        click.echo(f"WARNING: {alive} of these lock(s) belong to runs that still count as alive.", err=True)
    if not yes:
        click.confirm(f"Remove these {len(locks)} lock file(s)?", abort=True, err=True)
    remove_locks([path for path, _ in locks])
    click.echo(f"removed {len(locks)} lock file(s) from {folder}")
