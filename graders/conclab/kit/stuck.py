"""A child process of the student's that gets stuck, the way real code gets stuck: it stops
sending (as if blocked for ever, or busy elsewhere), yet a signal sent to it still arrives,
so terminate() or kill() followed by join() ends it.  Graders and public tests import it
from `conclab.testing`.

A process stopped with SIGSTOP runs no more, but it would not act on a SIGTERM either until
it is continued, and join() after terminate() would then wait for ever: not how a stuck
process behaves.  So the process is held stopped, and continued as soon as a signal is
waiting for it (Linux shows pending signals in /proc/PID/status); where that cannot be
read, it is continued for an instant every few milliseconds, which lets a waiting signal
arrive while the process itself gets next to no time to run.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from time import monotonic as _now

import psutil

from conclab.core import cleanup
from conclab.core.cleanup import HELPER_PREFIX

#: Signals that only stop or continue a process: they do not ask it to end.
_JOB_CONTROL = {
    getattr(signal, name) for name in ("SIGSTOP", "SIGCONT", "SIGTSTP", "SIGTTIN", "SIGTTOU") if hasattr(signal, name)
}


def _pending(pid: int) -> bool | None:
    """Whether a signal that is not job control waits for the process; None where this
    cannot be read (not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            masks = [int(line.split()[1], 16) for line in status if line.startswith(("SigPnd:", "ShdPnd:"))]
    except (OSError, ValueError, IndexError):
        return None
    waiting = {n for mask in masks for n in range(1, 65) if mask >> (n - 1) & 1}
    return bool(waiting - _JOB_CONTROL)


def _started(proc: psutil.Process) -> float:
    try:
        return proc.create_time()
    except psutil.Error:
        return float("inf")


def _helper(proc: psutil.Process) -> bool:
    """One of multiprocessing's own processes (the resource tracker, the forkserver), which
    may be seen a moment before multiprocessing has noted its pid.  The forkserver's own
    children, the student's processes, have its command line too, but not our pid as parent."""
    try:
        command = " ".join(proc.cmdline())
        parent = proc.ppid()
    except psutil.Error:
        return True
    return "multiprocessing.resource_tracker" in command or (
        "multiprocessing.forkserver" in command and parent == os.getpid()
    )


class StuckChild:
    """`with StuckChild(before) as stuck:` the first child process started since `before`
    (a set of pids, from `process_ids()`) is stopped as soon as it is seen, for the rest of
    the block: `stuck.process` (a psutil.Process; None if no child was seen within
    `within` seconds).  A signal sent to it reaches it; at the end of the block it is
    continued, if still there, so that clean-up can end it.  `stuck.signalled` tells
    whether something signalled it."""

    def __init__(self, before: set[int], within: float = 5.0) -> None:
        self.before = before
        self.within = within
        self.process: psutil.Process | None = None
        self.signalled = False
        self._holding = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=HELPER_PREFIX + "stuck-child", daemon=True)

    def __enter__(self) -> StuckChild:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(5.0)
        if self._holding and self.process is not None:
            try:
                self.process.resume()
            except psutil.Error:
                pass

    def _run(self) -> None:
        deadline = _now() + self.within
        while not self._done.is_set() and _now() < deadline:
            for proc in sorted(cleanup.started_since(self.before), key=_started):
                if cleanup.running(proc) and not _helper(proc):
                    try:
                        proc.suspend()
                    except psutil.Error:
                        continue  # it has ended already: the next one
                    self.process, self._holding = proc, True
                    break
            if self.process is not None:
                break
            self._done.wait(0.003)
        while self._holding and self.process is not None and not self._done.is_set():
            self._hold(self.process)

    def _hold(self, proc: psutil.Process) -> None:
        """Keep the process stopped for a few milliseconds, and let a signal through."""
        pending = _pending(proc.pid)
        try:
            if pending:
                self.signalled, self._holding = True, False
                proc.resume()  # the signal arrives; an ordinary process then ends
            elif pending is None and os.name == "posix":
                proc.resume()  # for an instant: a waiting signal arrives, little else runs
                proc.suspend()
        except psutil.Error:
            self._holding = False  # it has ended
            return
        self._done.wait(0.005 if pending is not None else 0.02)
