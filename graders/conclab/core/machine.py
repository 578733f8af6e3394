"""Timing tests run alone on the machine.

A speed-up measured while another grading run computes on the other core is a
measurement of that other run.  Every test of a topic takes a shared lock on a file in
the temporary folder, and a test marked `alone` takes it exclusively, so it waits until
no other test (in this or any other grading process on the machine) is running, and
none starts until it has finished.  A second lock gives the alone tests priority, so a
stream of short tests cannot keep them waiting.  POSIX only; elsewhere a no-op.

A lock is held by this process alone: a process forked while a test holds it (a worker, or
a daemon a submission starts) closes its copies at once, so nothing that outlives the test
holds the machine.  `grade-all` gives each submission a lock folder of its own
(private_folder) whose lock files are links to the machine's: the same locks, but a name
for them that no other submission's run shares.
"""

from __future__ import annotations

import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
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


LOCKS = ("gate", "run")
_held: set[int] = set()  # the lock files this process has open


def folder() -> str:
    """Where the machine-wide locks live."""
    return _FOLDER


def _open(name: str) -> int:
    os.makedirs(_FOLDER, exist_ok=True)
    path = os.path.join(_FOLDER, name)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO or a device in its place is no lock
        os.close(fd)
        raise OSError(f"{path} is not a regular file")
    return fd


def private_folder(path: Path) -> str:
    """A new lock folder at `path` (mode 0700) whose locks are the machine's (hard links to
    them); where links cannot be made (another file system, another user's lock files), the
    machine's folder itself.  Returns the folder to use."""
    try:
        path.mkdir(mode=0o700)
        for name in LOCKS:
            os.close(_open(name))
            os.link(os.path.join(_FOLDER, name), path / name, follow_symlinks=False)
    except OSError:
        return _FOLDER
    return str(path)


def _close_held() -> None:
    for fd in list(_held):
        try:
            os.close(fd)
        except OSError:
            pass
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_held)


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
    try:
        gate = _open("gate")
        try:
            run = _open("run")
        except OSError:
            os.close(gate)
            raise
    except OSError:  # no lock to be had here: the test runs anyway, as after MAX_WAIT
        yield
        return
    _held.update((gate, run))
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
        for fd in (run, gate):  # closing releases the locks (a forked child has closed its copies)
            if fd in _held:
                _held.discard(fd)
                os.close(fd)
