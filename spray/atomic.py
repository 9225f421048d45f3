"""Replacing a file atomically: readers see the whole old file or the whole new one, never a part.

Report and audit pages were written in place, so a full disk left a truncated class page
that ``spray serve`` served (issue 14). The text goes to a hidden temporary file in the same
folder (so the rename stays on one file system), is flushed to disk, then renamed over the
target with ``os.replace`` (atomic on POSIX); on any failure the temporary file is removed
and the old file stays as it was. A process killed mid-write leaves a hidden
``.<name>.<random>.tmp`` behind, never a half page under the page's name.
"""

from __future__ import annotations

import contextlib
import os
import stat
import uuid
from pathlib import Path


def write_text_atomically(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see the module docstring) and return the path.

    A new file gets the usual mode (0666 less the umask); a replaced one keeps its mode.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name[:100]}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with open(descriptor, "w", encoding=encoding) as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(temporary, stat.S_IMODE(os.stat(path).st_mode))
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    return path
