"""What the engine (the pytest plugin) and the vocabulary share while a test runs, in one
place.  The engine writes it around each test (engine/plugin.py and what it calls); the
vocabulary reads it.  Nothing else writes here.
"""

from __future__ import annotations

import threading
from time import monotonic as _now
from typing import Any

#: The trace of the current test (engine.chaos.Chaos): it counts the lines of student code
#: that run.  None while no test is traced.
tracer: Any = None

#: NotImplementedError raised by the code under test during the current test: a stub.
not_implemented: list[BaseException] = []

#: The calls of student code still running (a Job's thread is the graders', but the code in
#: it is the student's: the engine stops it after the test if it is busy).
running_jobs: set = set()

#: Threads that existed before the first test (pytest's own, xdist's): never the student's.
#: Kept as Thread objects, not idents: a thread started later may get the ident of one that
#: has ended, and would then pass for it.
session_threads: set[threading.Thread] = set()

#: Threads that were alive when the current test started: left over from earlier tests.
test_threads: set[threading.Thread] = set()

#: Set once the run has been interrupted for real (Ctrl-C, SIGINT): a KeyboardInterrupt then
#: is the person's, not one the student's code raised.
interrupted = False

#: When the running test's time budget runs out (a time.monotonic() value), if it has one.
budget_ends: float | None = None


def remember_session_threads() -> None:
    """At the start of the run: every thread alive now is the run's own."""
    session_threads.update(threading.enumerate())


def remember_test_threads() -> set[threading.Thread]:
    """At the start of a test: the threads alive now were not started by it."""
    test_threads.clear()
    test_threads.update(threading.enumerate())
    return set(test_threads)


def start_budget(seconds: float | None) -> None:
    """The running test's budget starts now (None: the test has ended, or has no budget)."""
    global budget_ends
    budget_ends = None if seconds is None else _now() + seconds


def time_left() -> float | None:
    """Seconds left of the running test's time budget; None when it has no budget."""
    return None if budget_ends is None else max(0.0, budget_ends - _now())
