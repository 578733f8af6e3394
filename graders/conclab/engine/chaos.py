"""Forced preemption: make races in student code show up on every run.

Under the GIL, CPython switches threads only every few milliseconds, so a read-modify-
write like `self._balance += amount` is almost never interrupted and a missing lock goes
unnoticed.  While chaos is on, a trace function watches the opcodes of the student's
files (and only those) and, at random points chosen by a seeded generator, sleeps for a
tenth of a millisecond (time.sleep(0) also releases the GIL, but the same thread often
takes it straight back; a real sleep lets the other threads run, on every version).
Another thread then runs in the middle of the student's statement, exactly where a real
machine might switch.  Correct code stays correct: a switch is something every thread
must already expect.  The same trace function counts the lines of student code that run,
which tells a thread that really waits (no lines) from one that polls.
"""

from __future__ import annotations

import os
import random
import sys
import threading
from time import sleep as _sleep  # bound now, so a student module patching time cannot change it

from conclab.core import diagnose

# One in how many opcodes of student code gives the GIL away.  Measured: at 1 in 50 a
# lock-free counter loses hundreds of updates in a few thousand increments, while the
# locked version stays well within its time budget; plenty of margin both ways.
DEFAULT_RATE = 1 / 50
# How long a forced switch sleeps: long enough for another thread to take the GIL.
SWITCH_SLEEP = 0.0001


class Chaos:
    def __init__(self, seed: int | str, rate: float = DEFAULT_RATE):
        self.seed = seed
        self.rate = rate
        self._random = random.Random(seed).random
        self.switches = 0
        self.lines = 0  # lines of student code run so far, in every traced thread
        self.active = False

    # The trace functions must be quick: they run on every call in every traced thread.
    def _global(self, frame, event, arg):
        if self.active and event == "call" and diagnose.is_student_file(frame.f_code.co_filename):
            frame.f_trace_opcodes = True
            return self._local
        return None

    def _local(self, frame, event, arg):
        if not self.active:
            return None  # stop tracing this frame
        if event == "opcode":
            if self.rate and self._random() < self.rate:
                self.switches += 1
                _sleep(SWITCH_SLEEP)
        elif event == "line":
            self.lines += 1
        return self._local

    def start(self) -> None:
        """Trace the calling thread and every thread started from now on."""
        global _running
        _running = self
        self.active = True
        threading.settrace(self._global)
        sys.settrace(self._global)

    def stop(self) -> None:
        """Stop tracing new threads; threads still running lose their switches too."""
        self.active = False
        threading.settrace(None)  # type: ignore[arg-type]
        sys.settrace(None)


_running: Chaos | None = None


def _not_in_child_processes() -> None:
    """A forked child keeps the tracer of the thread that forked it: drop it there. The
    switches are for threads of the tested process; in a worker process they would only
    make CPU-bound student code many times slower."""
    if _running is not None:
        _running.stop()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_not_in_child_processes)


def new_seed() -> int:
    return random.SystemRandom().randrange(1, 10**6)
