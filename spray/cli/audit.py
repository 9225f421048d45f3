"""``spray audit``: one audit of a model version, compared with the last one; ``spray audit history``."""

from __future__ import annotations

import click

from spray.cli.errors import one_line_errors
from workflows.audit.settings import Thresholds

_DEFAULTS = Thresholds()
_CONFIG_HELP = (
    "The audit TOML file: a [run] table with `spray run` settings (model, weights, data, classes, "
    "store, reports, ...) and an [audit] table: model_name (default: the [run] model, or 'demo'), "
    "version (default: the model fingerprint's start), history (default: <store>.audit-history), "
    "on_findings, verify_suspicious (true: test each new suspicious cluster by intervention) with "
    "verify_samples (images per group, default 100), and the finding thresholds, product defaults not from the thesis: "
    f"prototype_similarity {_DEFAULTS.prototype_similarity} (cosine; same cluster above it), "
    f"suspicion {_DEFAULTS.suspicion:g} (the analysis's own threshold: clusters at or above it are reported "
    "when new or gone), "
    f"lambda2 {_DEFAULTS.lambda2} and eigengap {_DEFAULTS.eigengap} (absolute change reported)."
)


@click.group(invoke_without_command=True)
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help=_CONFIG_HELP)
@click.option(
    "--on-findings",
    metavar="CMD",
    help="Shell command run when the audit has findings, with the summary JSON path appended "
    "(also in $SPRAY_AUDIT_SUMMARY). Overrides on_findings in the config.",
)
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bars on long steps.")
@click.pass_context
@one_line_errors
def audit(ctx: click.Context, config_path: str | None, on_findings: str | None, progress: bool) -> None:
    """Audit a model version: analyse what is missing, record it, report what changed.

    Runs the `spray run` pipeline for the [run] settings (incremental: classes whose model and
    data fingerprints were already analysed with the same parameters are reused, not
    recomputed), records per class the 5 smallest eigenvalues of L_sym (Fig. 6.5, L2124), the
    eigengap, the cluster count and each cluster's size, suspicion and prototype in the audit
    history (Parquet, default <store>.audit-history/ beside the store), and compares them with
    the previous audit of the same model name: new or resolved suspicious clusters (matched by
    prototype cosine similarity), lambda_2 or eigengap moving beyond a tolerance, cluster
    counts changing. Findings go to a JSON summary and the top of the audit page in
    <reports>/audits/.

    A class with fewer than 3 usable maps is skipped (named in the output and the summary's
    skipped_classes) and does not change the exit status.

    Exit status: 0 no findings, 3 findings, 1 error (also: another audit of the store is
    running), 2 usage error.
    """
    if ctx.invoked_subcommand is not None:
        return
    if config_path is None:
        raise click.UsageError("spray audit needs --config audit.toml (see spray audit --help)")
    from workflows.audit import load_audit_config, run_audit, run_on_findings

    config = load_audit_config(config_path, on_findings=on_findings)
    result = run_audit(config, progress=progress)
    for outcome in result.run_result.outcomes:
        reuse = "analysis reused" if outcome.reused_analysis else "analysed"
        click.echo(f"{outcome.class_name}: {outcome.n_computed} of {outcome.n_samples} maps computed, {reuse}")
    for class_name, reason in result.run_result.skipped.items():
        click.echo(f"{class_name}: skipped, {reason}")
    if result.previous_audit_id is None:
        click.echo(f"first audit of {config.model_name!r}: recorded as the baseline for the next one")
    for finding in result.findings:
        click.echo(f"FINDING {finding.message}")
    for notice in result.notices:
        click.echo(f"note: {notice}")
    click.echo(f"{len(result.findings)} findings; summary: {result.summary_path}")
    click.echo(f"audit page: {result.page_path}")
    if result.findings and config.on_findings:
        returncode = run_on_findings(config.on_findings, result.summary_path)
        if returncode != 0:
            click.echo(f"spray: warning: the on-findings command exited {returncode}", err=True)
    ctx.exit(result.exit_code)


@audit.command()
@click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), help="The audit TOML file (finds the history)."
)
@click.option(
    "--history",
    "history_path",
    type=click.Path(file_okay=False),
    help="The history folder itself, instead of --config.",
)
@click.option("--model-name", help="Only audits of this model name.")
@click.option("--clusters", is_flag=True, help="One row per cluster (size, suspicion) instead of one per class.")
@one_line_errors
def history(config_path: str | None, history_path: str | None, model_name: str | None, clusters: bool) -> None:
    """Print the audit history: one row per audit and class, oldest first.

    The history is a Parquet dataset; in Python, pandas.read_parquet(FOLDER) reads it whole.
    """
    from workflows.audit import AuditHistory, load_audit_config
    from workflows.audit.record import LAMBDA_COLUMNS

    if (config_path is None) == (history_path is None):
        raise click.UsageError("give exactly one of --config and --history")
    folder = history_path or load_audit_config(config_path).history_path
    table = AuditHistory(folder).read(model_name)
    if table.empty:
        click.echo(f"no audits recorded in {folder}")
        return
    table["started_at"] = table["started_at"].dt.strftime("%Y-%m-%d %H:%M:%S")
    keys = ["audit_id", "started_at", "model_name", "model_version", "class_name"]
    if clusters:
        shown = table[[*keys, "cluster", "cluster_size", "suspicion"]]
    else:
        per_class = table.groupby(keys, sort=False)
        shown = per_class[[*LAMBDA_COLUMNS, "eigengap", "n_clusters", "n_computed"]].first()
        shown["max_suspicion"] = per_class["suspicion"].max()
        shown = shown.reset_index()
    click.echo(shown.to_string(index=False, float_format=lambda value: f"{value:.4g}"))
