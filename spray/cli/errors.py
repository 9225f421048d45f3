"""Turn :class:`spray.errors.SprayError` into one clear line and exit code 1."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from spray.errors import SprayError


def one_line_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a click command so that bad input ends as ``spray: error: ...`` (exit 1)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SprayError as error:
            click.echo(f"spray: error: {error}", err=True)
            raise SystemExit(1) from None

    return wrapper
