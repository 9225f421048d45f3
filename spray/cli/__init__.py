"""The ``spray`` command line.

This package is the one place in ``spray/`` that may import ``workflows``, ``reports`` and
``relevance_store`` (ARCHITECTURE.md, layers). Each sub-command lives in its own module and
is imported only when it is invoked, so ``spray --help`` stays fast (no torch, dask or numba
import on the short path).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

import click

from spray import __version__

# command name -> (module, attribute, one-line summary shown by ``spray --help``).
# A command whose module does not exist yet is simply not listed.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": ("spray.cli.run", "run", "Compute, analyse and report one class (or all): the everyday command."),
    "compute": ("spray.cli.compute", "compute", "Compute LRP relevance maps for a class into the store (resumable)."),
    "analyze": ("spray.cli.analyze", "analyze", "Run the spectral analysis on stored maps."),
    "report": ("spray.cli.report", "report", "Write the HTML reports from the store."),
    "serve": ("spray.cli.serve", "serve", "Serve the reports folder on 127.0.0.1 for browsing."),
    "info": ("spray.cli.store_commands", "info", "List models, datasets and classes in a store."),
    "check": (
        "spray.cli.store_commands",
        "check",
        "Verify a store: decode every done chunk (checksums), finite maps; --repair marks damage for recompute.",
    ),
    "unlock": (
        "spray.cli.unlock",
        "unlock",
        "List and remove the locks a gone run left beside a store (with a warning).",
    ),
    "demo": ("spray.cli.demo", "demo", "The built-in demo world: generate, export, train its model."),
    "verify": ("spray.cli.verify", "verify", "Verification experiments for a suspected shortcut (padding)."),
    "audit": ("spray.cli.audit", "audit", "Nightly model audit: analyse, compare with the last run, alert."),
    "export": ("spray.cli.export", "export", "Export stored analyses for other tools (a ViRelAy project)."),
    "layers": ("spray.cli.layers", "layers", "List a model's inner layers that --layer can read relevance at."),
    "tag": ("spray.cli.tag", "tag", "Tag a cluster as shortcut, legitimate or unsure; the tag follows it."),
    "schedule": (
        "spray.cli.schedule",
        "schedule",
        "Schedule nightly audits (cron line, systemd timer, or in-process).",
    ),
}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name, (module, _, _) in COMMANDS.items() if importlib.util.find_spec(module))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.list_commands(ctx):
            return None
        module, attribute, _ = COMMANDS[cmd_name]
        return getattr(importlib.import_module(module), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="spray")
def cli() -> None:
    """Spectral Relevance Analysis (SpRAy) of image classifiers.

    spray explains every image of a class with LRP, clusters the relevance maps
    spectrally and writes HTML reports that show the prediction strategies the model
    uses for that class, and which of them look like Clever Hans shortcuts.

    Start with `spray run --class aeroplane` (runs on the built-in demo).
    """


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv, prog_name="spray")


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
