"""``spray schedule``: run ``spray audit`` every day, by cron, systemd or an in-process scheduler."""

from __future__ import annotations

from pathlib import Path

import click

from spray.cli.errors import one_line_errors


@click.command()
@click.option("--at", "at", default="02:00", show_default=True, help="Time of day, HH:MM, local time of this machine.")
@click.option(
    "--config", "config_path", required=True, type=click.Path(exists=True, dir_okay=False), help="The audit TOML file."
)
@click.option("--on-findings", metavar="CMD", help="Passed on to `spray audit --on-findings`.")
@click.option(
    "--install", is_flag=True, help="Add the line to your crontab (replacing an earlier one for this config)."
)
@click.option(
    "--systemd",
    "systemd_dir",
    type=click.Path(file_okay=False),
    help="Write spray-audit.service and spray-audit.timer into DIR instead (e.g. ~/.config/systemd/user).",
)
@click.option(
    "--run",
    "run_now",
    is_flag=True,
    help="Stay in the foreground and run the audit daily (APScheduler), for containers.",
)
@one_line_errors
def schedule(
    at: str, config_path: str, on_findings: str | None, install: bool, systemd_dir: str | None, run_now: bool
) -> None:
    """Schedule a daily `spray audit --config FILE`.

    By default prints a crontab line; --install adds it to your crontab, --systemd DIR writes a
    service + timer pair, --run schedules in this process. Every way runs the audit from the
    config file's folder (relative paths in it are taken from there) and appends its output
    to audit.log in the reports folder.
    """
    from workflows.audit import load_audit_config
    from workflows.audit import schedule as scheduling

    if sum([install, systemd_dir is not None, run_now]) > 1:
        raise click.UsageError("choose one of --install, --systemd and --run")
    config = load_audit_config(config_path)
    folder = Path(config_path).resolve().parent
    log_path = folder / config.log_path  # scheduled runs start in the config's folder
    if not run_now:  # before anything is made: no path of a cron line or unit may break its line
        scheduling.refuse_control_characters(config_path, log_path, on_findings)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if systemd_dir is not None:
        units = scheduling.systemd_units(at, config_path, log_path, on_findings)
        for path in scheduling.write_systemd_units(systemd_dir, units):
            click.echo(f"wrote {path}")
        click.echo("enable with: systemctl --user daemon-reload && systemctl --user enable --now spray-audit.timer")
        return
    if run_now:
        command = scheduling.audit_command(config_path, on_findings)
        scheduler = scheduling.build_scheduler(scheduling.daily_trigger(at), command, folder, log_path)
        click.echo(f"running the audit daily at {at} (local time); log: {log_path}; stop with Ctrl-C")
        try:
            with scheduling.logging_to(log_path):
                scheduler.start()
        except (KeyboardInterrupt, SystemExit):
            click.echo("scheduler stopped")
        return
    marker, line = scheduling.crontab_entry(at, config_path, log_path, on_findings)
    if install:
        scheduling.install_crontab(marker, line)
        click.echo(f"installed in your crontab:\n{line}")
    else:
        click.echo(f"{marker}\n{line}")
