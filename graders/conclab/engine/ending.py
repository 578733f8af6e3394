"""The start and the end of the run: what was there before student code ran, the results
file completed, and a run that ends even when student code left behind threads that never
end, child processes, or a clean-up at exit that waits for ever."""

from __future__ import annotations

import atexit
import os
import sys
import threading

import pytest

from conclab.core import cleanup
from conclab.kit import state

from . import budget, calls, integrity, session

#: How long Python's own clean-up at exit may take before the run ends without it.
EXIT_GRACE = 10.0


def started() -> None:
    """Before the first test: every thread and child process now is the run's own."""
    run = session.run
    assert run is not None
    state.remember_session_threads()
    run.session_threads = {t.ident for t in threading.enumerate()}
    run.session_children = set(cleanup.descendants())
    threading.excepthook = calls.session_excepthook(threading.excepthook)


def finished(exitstatus: int) -> None:
    run = session.run
    if run is not None:
        run.exitstatus = int(exitstatus)
        if run.writer is not None:
            replaced = run.tools.changed() if run.tools is not None and not run.cheat else []
            if replaced:  # after the last test's own check: by a thread the code under test left running
                run.cheat = integrity.message(replaced, "your module")
                run.writer.integrity(run.cheat)
            run.writer.complete(int(exitstatus))


def _arm_exit_watchdog(status: int) -> None:
    """Python's clean-up at exit can wait for ever on what student code left behind: a
    process pool's finalizer, for one, takes the pool's task lock, and a worker that was
    killed while holding it never gives it back.  A daemon thread keeps running during
    that clean-up; if the process is still there after EXIT_GRACE seconds, it ends it with
    the run's status (the reports are written by then)."""

    message = (
        "conclab: Python's clean-up at exit is stuck on something the tested code left behind "
        "(for example a process pool that was never closed); ending the run without it.\n"
    )
    timer = threading.Timer(EXIT_GRACE, budget.abandon_run, (2, message, status))
    timer.name, timer.daemon = cleanup.HELPER_PREFIX + "exit", True
    timer.start()


def arm_exit_watchdog() -> None:
    """Once student code has run here, arm the exit watchdog before any plugin's clean-up
    (pytest's own collects garbage, which can finalize what student code left behind).
    An xdist worker stays alive until the whole run ends, so there it is armed only when
    Python really exits."""
    run = session.run
    if run is None or not run.student_code_ran:
        return
    if os.environ.get("PYTEST_XDIST_WORKER"):
        atexit.register(_arm_exit_watchdog, run.exitstatus)  # runs before earlier-registered clean-ups
    else:
        _arm_exit_watchdog(run.exitstatus)


def end_anyway(config: pytest.Config) -> None:
    """If student code left threads that never end or child processes, end the run anyway:
    the reports are written by now; kill the children and exit with the run's status."""
    run = session.run
    if run is None:
        return
    stuck = cleanup.stuck_non_daemon_threads(run.session_threads)
    children = [p for pid, p in cleanup.descendants().items() if pid not in run.session_children]
    if not stuck and not children:
        return
    if children:
        cleanup.kill_processes(children)
    if not stuck:
        return
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is not None:
        capman.stop_global_capturing()
    names = ", ".join(repr(t.name) for t in stuck)
    sys.stderr.write(
        f"conclab: {len(stuck)} thread(s) started by the tested code never finished ({names}); "
        f"ending the run without waiting for them.\n"
    )
    cleanup.hard_exit(run.exitstatus)
