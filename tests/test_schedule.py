"""Scheduling the nightly audit: crontab line and install, systemd units, in-process scheduler."""

from __future__ import annotations

import logging
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from click.testing import CliRunner

from spray.cli import cli
from workflows.audit import schedule as scheduling

AUDIT_TOML = """
[run]
classes = ["horse"]
store = "nightly/store.zarr"
reports = "nightly/reports"

[audit]
model_name = "demo"
"""


@pytest.fixture()
def config(tmp_path):
    path = tmp_path / "cfg dir" / "audit.toml"  # a space in the path: quoting must hold
    path.parent.mkdir()
    path.write_text(AUDIT_TOML)
    return path


@pytest.fixture()
def fake_crontab(tmp_path, monkeypatch):
    """A stand-in for crontab(1) keeping the table in a file; never the user's real crontab."""
    table = tmp_path / "crontab.txt"
    script = tmp_path / "fake-crontab"
    script.write_text(
        "#!/bin/sh\n"
        f'TABLE="{table}"\n'
        'if [ "$1" = "-l" ]; then [ -f "$TABLE" ] && cat "$TABLE" && exit 0; echo "no crontab for tester" >&2; exit 1; fi\n'
        'if [ "$1" = "-" ]; then cat > "$TABLE"; exit 0; fi\n'
        "exit 2\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv(scheduling.CRONTAB_ENV, str(script))
    return table


def test_parse_time_takes_24_hour_local_times_and_names_bad_ones():
    assert scheduling.parse_time("02:00") == (2, 0)
    assert scheduling.parse_time("23:59") == (23, 59)
    for bad in ("24:00", "2pm", "02:60", ""):
        with pytest.raises(scheduling.ScheduleError, match="HH:MM"):
            scheduling.parse_time(bad)


def test_the_crontab_line_runs_the_audit_from_the_config_folder_at_the_time(config):
    marker, line = scheduling.crontab_entry("02:30", config, config.parent / "nightly/reports/audit.log", "notify 50%")
    fields = line.split(" ", 5)
    assert fields[:5] == ["30", "2", "*", "*", "*"]
    shell = fields[5].replace(r"\%", "%")
    words = shlex.split(shell)
    assert words[:3] == ["cd", str(config.parent), "&&"]
    assert words[3:9] == [sys.executable, "-m", "spray", "audit", "--config", str(config)]
    assert words[9:11] == ["--on-findings", "notify 50%"]
    assert words[-3:] == [">>", str(config.parent / "nightly/reports/audit.log"), "2>&1"]
    assert "%" not in line.replace(r"\%", "")  # cron would turn a bare % into a newline
    assert marker.startswith("#") and str(config) in marker


def test_the_crontab_line_really_runs_in_a_shell(config, tmp_path):
    """Run the printed command (minus the schedule) with sh: the audit starts and logs (here it
    fails at once, as the demo store is not there: exit code 1 is logged)."""
    _, line = scheduling.crontab_entry("02:00", config, tmp_path / "log.txt")
    command = line.split(" ", 5)[5].replace("audit --config", "audit --help >/dev/null; echo ran --config", 1)
    subprocess.run(["sh", "-c", command], check=True, timeout=60)
    assert "ran --config" in (tmp_path / "log.txt").read_text()


def test_install_adds_one_line_per_config_and_keeps_other_entries(config, fake_crontab):
    runner = CliRunner()
    result = runner.invoke(cli, ["schedule", "--at", "02:00", "--config", str(config), "--install"])
    assert result.exit_code == 0, result.output
    fake_crontab.write_text(fake_crontab.read_text() + "0 5 * * * backup\n")
    result = runner.invoke(cli, ["schedule", "--at", "03:15", "--config", str(config), "--install"])
    assert result.exit_code == 0, result.output
    lines = fake_crontab.read_text().splitlines()
    assert "0 5 * * * backup" in lines
    audit_lines = [line for line in lines if "spray audit --config" in line and not line.startswith("#")]
    assert len(audit_lines) == 1 and audit_lines[0].startswith("15 3 * * * ")
    assert (config.parent / "nightly/reports").is_dir()  # the log's folder exists before cron runs


def test_install_without_a_crontab_program_is_a_clear_error(config, monkeypatch):
    monkeypatch.setenv(scheduling.CRONTAB_ENV, "/nonexistent/crontab")
    result = CliRunner().invoke(cli, ["schedule", "--config", str(config), "--install"])
    assert result.exit_code == 1
    assert "crontab program" in result.output and "--systemd" in result.output


def test_printing_is_the_default_and_bad_usage_exits_2(config):
    runner = CliRunner()
    printed = runner.invoke(cli, ["schedule", "--at", "01:05", "--config", str(config)])
    assert printed.exit_code == 0 and printed.output.splitlines()[1].startswith("5 1 * * * cd ")
    assert runner.invoke(cli, ["schedule", "--config", str(config), "--install", "--run"]).exit_code == 2
    assert runner.invoke(cli, ["schedule", "--config", str(config.parent / "missing.toml")]).exit_code == 2
    bad_time = runner.invoke(cli, ["schedule", "--at", "25:00", "--config", str(config)])
    assert bad_time.exit_code == 1 and "HH:MM" in bad_time.output


def test_systemd_units_are_a_daily_timer_and_a_oneshot_service(config, tmp_path):
    result = CliRunner().invoke(
        cli, ["schedule", "--at", "02:00", "--config", str(config), "--systemd", str(tmp_path / "units")]
    )
    assert result.exit_code == 0, result.output
    service = (tmp_path / "units/spray-audit.service").read_text()
    timer = (tmp_path / "units/spray-audit.timer").read_text()
    assert "OnCalendar=*-*-* 02:00:00" in timer and "Persistent=true" in timer and "WantedBy=timers.target" in timer
    assert "Type=oneshot" in service and "SuccessExitStatus=3" in service
    assert f"WorkingDirectory={config.parent}" in service
    exec_start = next(line for line in service.splitlines() if line.startswith("ExecStart="))
    assert shlex.split(exec_start.removeprefix("ExecStart=")) == [
        sys.executable,
        "-m",
        "spray",
        "audit",
        "--config",
        str(config),
    ]
    log = config.parent / "nightly/reports/audit.log"
    assert f"StandardOutput=append:{log}" in service


def test_systemd_quoting_escapes_specifiers_and_variables():
    assert scheduling._systemd_quote('50% of $HOME "x"') == '"50%% of $$HOME \\"x\\""'


def test_the_in_process_scheduler_runs_the_command_at_each_trigger_and_logs_it(tmp_path):
    """APScheduler's BlockingScheduler with a per-second cron trigger: the job runs and logs."""
    log = tmp_path / "reports/audit.log"
    marker = tmp_path / "ran"
    command = [
        sys.executable,
        "-c",
        f"import pathlib, sys; pathlib.Path({str(marker)!r}).touch(); print('audit says hi'); sys.exit(3)",
    ]
    scheduler = scheduling.build_scheduler(CronTrigger(second="*"), command, tmp_path, log)
    assert isinstance(scheduler, BlockingScheduler)
    thread = threading.Thread(target=scheduler.start, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while "exited 3" not in (log.read_text() if log.exists() else "") and time.monotonic() < deadline:
        time.sleep(0.1)
    scheduler.shutdown(wait=True)
    thread.join(timeout=10)
    text = log.read_text()
    assert marker.exists() and "audit says hi" in text and "audit exited 3 (findings)" in text and "starting" in text


def test_the_daily_trigger_fires_next_at_the_given_local_time():
    trigger = scheduling.daily_trigger("02:00")
    fire = trigger.get_next_fire_time(None, __import__("datetime").datetime.now().astimezone())
    assert (fire.hour, fire.minute, fire.second) == (2, 0, 0)


def test_schedule_run_starts_a_blocking_scheduler_with_the_daily_trigger(config, monkeypatch):
    """`spray schedule --run` (start() stubbed: it would block forever) schedules the audit
    command at the given time and logs to audit.log in the reports folder."""
    seen = {}

    def start(self):
        (job,) = self.get_jobs()
        seen["trigger"] = {f.name: str(f) for f in job.trigger.fields}
        seen["args"] = job.args
        logging.getLogger("apscheduler.scheduler").info("scheduler started (stub)")
        raise KeyboardInterrupt

    monkeypatch.setattr(BlockingScheduler, "start", start)
    result = CliRunner().invoke(cli, ["schedule", "--run", "--at", "04:30", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert seen["trigger"]["hour"] == "4" and seen["trigger"]["minute"] == "30"
    command, cwd, log = seen["args"]
    assert command == scheduling.audit_command(config) and Path(cwd) == config.parent
    assert Path(log) == config.parent / "nightly/reports/audit.log"
    assert "scheduler started (stub)" in Path(log).read_text()
    assert "scheduler stopped" in result.output


INJECTED = "x\n* * * * * touch /tmp/spray-pwned\n"


@pytest.fixture()
def hostile_config(tmp_path):
    """A config in a folder whose name carries a newline and a whole crontab line."""
    path = tmp_path / INJECTED / "audit.toml"
    path.parent.mkdir(parents=True)
    path.write_text(AUDIT_TOML)
    return path


def test_a_newline_in_the_config_folder_cannot_inject_a_crontab_line(hostile_config, fake_crontab):
    runner = CliRunner()
    for extra in ([], ["--install"]):
        result = runner.invoke(cli, ["schedule", "--config", str(hostile_config), *extra])
        assert result.exit_code == 1 and "control character" in result.output, result.output
        assert not any(line.startswith("* * * * *") for line in result.output.splitlines())
    assert not fake_crontab.exists()  # nothing installed
    assert not (hostile_config.parent / "nightly").exists()  # nor any folder made before the refusal


def test_a_newline_in_the_config_folder_cannot_inject_a_systemd_line(hostile_config, tmp_path):
    units = tmp_path / "units"
    result = CliRunner().invoke(cli, ["schedule", "--config", str(hostile_config), "--systemd", str(units)])
    assert result.exit_code == 1 and "control character" in result.output
    assert not units.exists() or not any(units.iterdir())


@pytest.mark.parametrize("character", ["\n", "\r", "\x00", "\t", "\x1b", "\x7f", "\x85", "\x9b"])
def test_every_control_character_is_refused_in_every_value_of_a_cron_line_or_unit(config, tmp_path, character):
    log = tmp_path / "audit.log"
    for make in (scheduling.crontab_entry, scheduling.systemd_units):
        with pytest.raises(scheduling.ScheduleError, match=r"--on-findings .*control character"):
            make("02:00", config, log, f"notify{character}ExecStartPre=/bin/sh -c id")
        with pytest.raises(scheduling.ScheduleError, match=r"log file .*control character"):
            make("02:00", config, tmp_path / f"re{character}ports" / "audit.log")
    assert scheduling.crontab_entry("02:00", config, log, "notify \u00e9t\u00e9 \u2603")  # printable non-ASCII is fine
