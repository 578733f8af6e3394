"""Timing tests run alone on the machine, as far as this user's runs go.

A speed-up measured while another grading run computes on the other core is a
measurement of that other run.  Every grader takes a shared lock on a file in a folder of
the user's own, and a test marked `alone` takes it exclusively, so it waits until no other
grader (in this or any other grading process of the user) is running, and none starts
until it has finished.  Public tests take no lock unless marked `alone`: they never wait
for a grading run.  The lock is the user's: another user's runs (a lab server, a
JupyterHub) neither share nor block it; what they take of the CPUs, the timing tests
measure (kit/parallel.py).  A second lock gives the alone tests priority, so a
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

# Every grading process of the user must find the same folder, whatever its TMPDIR:
# a parent that gives its children a temporary folder of their own passes this one on.
FOLDER_VARIABLE = "CONCLAB_LOCKS"
MAX_WAIT = 300.0  # never wait for ever: after this, run anyway


def _candidates() -> list[str]:
    """Where the user's lock folder may be, best first: the user's runtime folder, a folder
    named after the user in the temporary folder, the user's cache folder."""
    if not hasattr(os, "getuid"):
        return [os.path.join(tempfile.gettempdir(), "conclab-locks")]
    found = []
    if os.environ.get("XDG_RUNTIME_DIR"):
        found.append(os.path.join(os.environ["XDG_RUNTIME_DIR"], "conclab-locks"))
    found.append(os.path.join(tempfile.gettempdir(), f"conclab-locks-{os.getuid()}"))
    found.append(os.path.join(os.path.expanduser("~"), ".cache", "conclab-locks"))
    return found


def _own_folder(path: str) -> bool:
    """Whether `path` is (or now is) a real folder of this user's that nobody else may write."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        info = os.lstat(path)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            return False
        if info.st_mode & 0o077:
            os.chmod(path, 0o700)
        return True
    except OSError:
        return False


def _choose() -> str:
    inherited = os.environ.get(FOLDER_VARIABLE)
    if inherited:
        return inherited
    candidates = _candidates()
    if not hasattr(os, "getuid"):
        return candidates[0]
    return next((path for path in candidates if _own_folder(path)), candidates[0])


_FOLDER = _choose()


LOCKS = ("gate", "run")
_held: set[int] = set()  # the lock files this process has open


def folder() -> str:
    """Where the user's locks live."""
    return _FOLDER


def _open(name: str) -> int:
    os.makedirs(_FOLDER, mode=0o700, exist_ok=True)
    path = os.path.join(_FOLDER, name)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
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
