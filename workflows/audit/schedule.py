"""Running ``spray audit`` every night: a crontab line, a systemd service + timer, or an
in-process APScheduler loop for containers that have neither.

All three run the same command, ``python -m spray audit --config FILE``, from the config
file's folder (so relative paths in it mean what they meant when it was written), append its
output to ``audit.log`` in the reports folder, and use the machine's local time for ``--at``
(as cron and systemd do).

No value that reaches a crontab line or a unit file may hold a control character: a newline
in a config folder's name installed a cron entry of the folder's choosing, and gave the
systemd service an ``ExecStartPre=`` (issue 14). Quoting cannot help there, as both formats
end a line at every newline whatever the quotes; so C0, DEL and C1 characters are refused.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from spray.atomic import write_text_atomically
from spray.errors import SprayError

CRONTAB_ENV = "SPRAY_CRONTAB"
"""Environment variable naming the crontab program (default ``crontab``); tests point it at a fake."""
UNIT_NAME = "spray-audit"
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_EXIT_MEANINGS = {0: "no findings", 1: "error", 2: "usage error", 3: "findings"}
log = logging.getLogger("spray.audit.schedule")


class ScheduleError(SprayError):
    """A schedule that cannot be made: a bad time, or a crontab that cannot be read or written."""


def parse_time(at: str) -> tuple[int, int]:
    """``"02:00"`` -> ``(2, 0)``: hour and minute of the day, local time."""
    match = _TIME.match(at.strip())
    if not match:
        raise ScheduleError(f"--at {at!r} is not a time of day; give HH:MM in 24-hour local time, e.g. 02:00")
    return int(match.group(1)), int(match.group(2))


def refuse_control_characters(
    config_path: str | os.PathLike, log_path: str | os.PathLike, on_findings: str | None = None
) -> None:
    """Raise :class:`ScheduleError` if any value written into a crontab line or a unit file
    (the config's absolute path and folder, the log file, the Python executable and the
    ``--on-findings`` command) holds a control character."""
    paths = {"config file": config_path, "log file": log_path}
    _refuse_in(
        {
            **{what: os.fspath(path) for what, path in paths.items()},
            "Python executable": sys.executable,
            "--on-findings command": on_findings or "",
        }
    )
    _refuse_in({what: str(Path(path).resolve()) for what, path in paths.items()})  # the folders above them too


def _refuse_in(values: dict[str, str]) -> None:
    for what, value in values.items():
        if match := _CONTROL.search(value):
            raise ScheduleError(
                f"the {what} {value!r} holds the control character {match.group()!r}, which would end the crontab "
                "or unit-file line and let the rest run as a line of its own; rename it (or move the config) so "
                "that the path has no control characters"
            )


def audit_command(config_path: str | os.PathLike, on_findings: str | None = None) -> list[str]:
    """The command every schedule runs (absolute paths: cron and systemd start elsewhere)."""
    command = [sys.executable, "-m", "spray", "audit", "--config", str(Path(config_path).resolve())]
    return command + (["--on-findings", on_findings] if on_findings else [])


def crontab_entry(
    at: str, config_path: str | os.PathLike, log_path: str | os.PathLike, on_findings: str | None = None
) -> tuple[str, str]:
    """``(marker comment, crontab line)`` running the audit daily at ``at``."""
    hour, minute = parse_time(at)
    refuse_control_characters(config_path, log_path, on_findings)
    folder = Path(config_path).resolve().parent
    command = shlex.join(audit_command(config_path, on_findings))
    log_file = shlex.quote(str(Path(log_path).resolve()))
    line = f"{minute} {hour} * * * cd {shlex.quote(str(folder))} && {command} >> {log_file} 2>&1"
    # cron turns an unescaped % into a newline (crontab(5)).
    return _marker(config_path), line.replace("%", r"\%")


def install_crontab(marker: str, line: str) -> str:
    """Add ``line`` to the user's crontab, replacing an earlier entry with the same marker; returns the new crontab."""
    program = shlex.split(os.environ.get(CRONTAB_ENV, "crontab"))
    current = _crontab([*program, "-l"], check_empty=True)
    kept: list[str] = []
    skip_next = False
    for existing in current.splitlines():
        if skip_next:
            skip_next = False
        elif existing == marker:
            skip_next = True
        else:
            kept.append(existing)
    updated = "\n".join([*kept, marker, line]) + "\n"
    _crontab([*program, "-"], stdin=updated)
    return updated


def systemd_units(
    at: str, config_path: str | os.PathLike, log_path: str | os.PathLike, on_findings: str | None = None
) -> dict[str, str]:
    """A oneshot service running the audit and a timer starting it daily at ``at`` (file name -> text).

    Exit status 3 (findings) counts as success, so a failed unit always means an error.
    """
    hour, minute = parse_time(at)
    refuse_control_characters(config_path, log_path, on_findings)
    config = Path(config_path).resolve()
    log_file = _specifiers(str(Path(log_path).resolve()))
    exec_start = " ".join(_systemd_quote(arg) for arg in audit_command(config, on_findings))
    service = (
        "[Unit]\n"
        f"Description=spray audit of {_specifiers(str(config))}\n\n"
        "[Service]\n"
        "Type=oneshot\n"
        f"WorkingDirectory={_specifiers(str(config.parent))}\n"
        f"ExecStart={exec_start}\n"
        f"StandardOutput=append:{log_file}\n"
        f"StandardError=append:{log_file}\n"
        "SuccessExitStatus=3\n"
    )
    timer = (
        "[Unit]\n"
        f"Description=Daily spray audit of {_specifiers(str(config))} at {hour:02d}:{minute:02d}\n\n"
        "[Timer]\n"
        f"OnCalendar=*-*-* {hour:02d}:{minute:02d}:00\n"
        "Persistent=true\n\n"
        "[Install]\n"
        "WantedBy=timers.target\n"
    )
    return {f"{UNIT_NAME}.service": service, f"{UNIT_NAME}.timer": timer}


def write_systemd_units(folder: str | os.PathLike, units: dict[str, str]) -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, unit in units.items():
        written.append(write_text_atomically(folder / name, unit))
    return written


def build_scheduler(
    trigger: Any,
    command: list[str],
    cwd: str | os.PathLike,
    log_path: str | os.PathLike,
    scheduler_class: type = BlockingScheduler,
) -> Any:
    """An APScheduler scheduler that runs ``command`` at every ``trigger`` fire (not yet started).

    One run at a time (``max_instances=1``); runs missed while the process was busy or asleep
    are merged into one (``coalesce``) if at most an hour late.
    """
    scheduler = scheduler_class(job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600})
    scheduler.add_job(run_logged, trigger, args=(command, cwd, log_path), id=UNIT_NAME, name="spray audit")
    return scheduler


def daily_trigger(at: str) -> CronTrigger:
    hour, minute = parse_time(at)
    return CronTrigger(hour=hour, minute=minute)


@contextlib.contextmanager
def logging_to(log_path: str | os.PathLike) -> Iterator[None]:
    """Within the block, send this module's and APScheduler's log records to ``log_path``."""
    handler = logging.FileHandler(log_path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    loggers = [logging.getLogger(name) for name in (log.name, "apscheduler")]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
        handler.close()


def run_logged(command: list[str], cwd: str | os.PathLike, log_path: str | os.PathLike) -> int:
    """Run ``command`` in ``cwd``, appending its output and a start/end line to ``log_path``."""
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as log_file:
        log_file.write(f"{_stamp()} spray schedule: starting {shlex.join(command)}\n")
        log_file.flush()
        returncode = subprocess.run(command, cwd=cwd, stdout=log_file, stderr=subprocess.STDOUT).returncode
        meaning = _EXIT_MEANINGS.get(returncode, "error")
        log_file.write(f"{_stamp()} spray schedule: audit exited {returncode} ({meaning})\n")
    log.info("audit exited %s (%s)", returncode, meaning)
    return returncode


def _crontab(command: list[str], *, stdin: str | None = None, check_empty: bool = False) -> str:
    try:
        done = subprocess.run(command, input=stdin, capture_output=True, text=True)
    except FileNotFoundError:
        raise ScheduleError(
            f"the crontab program {command[0]!r} was not found; install cron, or use --systemd DIR or --run instead"
        ) from None
    if done.returncode != 0:
        if check_empty and "no crontab" in done.stderr.lower():
            return ""
        raise ScheduleError(
            f"{shlex.join(command)} failed ({done.stderr.strip()}); fix the crontab by hand with crontab -e"
        )
    return done.stdout


def _marker(config_path: str | os.PathLike) -> str:
    return f"# spray audit --config {Path(config_path).resolve()}"


def _specifiers(value: str) -> str:
    """Escape systemd's ``%`` specifiers in a unit value (systemd.unit(5))."""
    return value.replace("%", "%%")


def _systemd_quote(arg: str) -> str:
    """One ``ExecStart`` argument: double-quoted, with ``%`` specifiers and ``$`` expansion escaped
    (systemd.service(5), command lines)."""
    quoted = arg.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + _specifiers(quoted).replace("$", "$$") + '"'


def _stamp() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


__all__ = [
    "CRONTAB_ENV",
    "ScheduleError",
    "audit_command",
    "build_scheduler",
    "crontab_entry",
    "daily_trigger",
    "install_crontab",
    "logging_to",
    "parse_time",
    "refuse_control_characters",
    "run_logged",
    "systemd_units",
    "write_systemd_units",
]
