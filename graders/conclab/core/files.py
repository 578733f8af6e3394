"""Writing a file whole: readers see the old text or the new one, never half of either.

The new text goes to a temporary file of a random name, created anew (never one that is
already there, nor a link someone left in its place), in the same folder, and then takes
the file's name.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def replace(path: str | os.PathLike, text: str, new_mode: int = 0o644) -> None:
    """Write `text` (UTF-8) as the whole of the file at `path`, keeping the permissions of the
    file it replaces (`new_mode` for a new one)."""
    target = Path(path)
    try:
        mode = os.stat(target).st_mode & 0o777
    except OSError:
        mode = new_mode
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
