"""Running a verification experiment's chunk tasks with a progress bar and one clear error.

The padding experiment and the cluster test both run resumable chunk tasks that return how many
images they did; a task that fails for a reason other than a :class:`SprayError` becomes one
:class:`ComputeError` line saying that the finished chunks are kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tqdm.auto import tqdm

from spray.errors import SprayError
from workflows.compute import ComputeError


def run_counted(
    runner: Any, function: Callable[..., int], tasks: Sequence[Any], *, total: int, desc: str, what: str, progress: bool
) -> int:
    """Run ``function`` over ``tasks`` with ``runner`` (see :mod:`workflows.cluster`); the images done.

    ``total`` sizes the bar (images), ``desc`` labels it and ``what`` names the experiment in the error."""
    done = 0
    with tqdm(total=total, unit="image", desc=desc, disable=not progress, dynamic_ncols=True) as bar:
        try:
            for n in runner(function, tasks):
                done += n
                bar.update(n)
        except SprayError:
            raise
        except Exception as error:
            raise ComputeError(
                f"{what} failed ({type(error).__name__}: {error}); finished chunks are kept, "
                "rerun the same command to resume"
            ) from error
    return done
