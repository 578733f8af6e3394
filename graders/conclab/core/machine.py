"""Timing tests run alone on the machine.

A speed-up measured while another grading run computes on the other core is a
measurement of that other run.  Every test of a topic takes a shared lock on a file in
the temporary folder, and a test marked `alone` takes it exclusively, so it waits until
no other test (in this or any other grading process on the machine) is running, and
none starts until it has finished.  A second lock gives the alone tests priority, so a
stream of short tests cannot keep them waiting.  POSIX only; elsewhere a no-op.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from time import monotonic as _now
from time import sleep as _sleep

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

# Every grading process on the machine must find the same folder, whatever its TMPDIR:
# a parent that gives its children a temporary folder of their own passes this one on.
FOLDER_VARIABLE = "CONCLAB_LOCKS"
_FOLDER = os.environ.get(FOLDER_VARIABLE) or os.path.join(tempfile.gettempdir(), "conclab-locks")
MAX_WAIT = 300.0  # never wait for ever: after this, run anyway


def folder() -> str:
    """Where the machine-wide locks live."""
    return _FOLDER


def _open(name: str) -> int:
    os.makedirs(_FOLDER, exist_ok=True)
    return os.open(os.path.join(_FOLDER, name), os.O_RDWR | os.O_CREAT, 0o666)


def _lock(fd: int, kind: int, deadline: float) -> bool:
    while True:
        try:
            fcntl.flock(fd, kind | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if _now() > deadline:
                return False
            _sleep(0.02)


@contextmanager
def share(alone: bool):
    """Hold the machine for a test: exclusively when `alone`, else shared with others."""
    if fcntl is None:
        yield
        return
    gate, run = _open("gate"), _open("run")
    deadline = _now() + MAX_WAIT
    try:
        if alone:
            _lock(gate, fcntl.LOCK_EX, deadline)  # no new test may start...
            _lock(run, fcntl.LOCK_EX, deadline)  # ...and the running ones finish
        else:
            _lock(gate, fcntl.LOCK_SH, deadline)  # waits while an alone test is queued
            _lock(run, fcntl.LOCK_SH, deadline)
            fcntl.flock(gate, fcntl.LOCK_UN)
        yield
    finally:
        os.close(run)  # closing releases the locks
        os.close(gate)
