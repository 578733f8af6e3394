"""Instrumented locks: provoke deadlocks on purpose, and explain them when they happen.

    table = LockTable(first_hold=0.1)
    forks = [table.lock(f"fork {i}") for i in range(5)]
    table.run(dine, forks, 3, eat, what="dine(...)", within=8)

Every TrackedLock knows which thread holds it, and the table knows which thread waits
for which lock.  `first_hold` provokes the deadlocks: a thread that holds a lock and goes
to wait for another one without a timeout keeps what it holds a moment first, every time,
so that the others take their first locks meanwhile and a program that can deadlock does
deadlock, every time.  A thread that holds a lock and tries another one with a timeout or
without blocking (the try-and-back-off strategy) is kept like that on its first try only:
the threads meet once, and their retries are never slowed, so backing off finishes as fast
as with plain locks.  While the call runs, the table looks for a circle of threads each
waiting, without a timeout, for a lock held by the next one: that is a deadlock for
certain.  It then breaks it (the waiting acquire() calls raise DeadlockBroken, so the
student's threads end) and fails the test with the circle spelled out: "Thread-2 holds
fork 3 and waits for fork 4, held by Thread-3, ...".  A call that does not finish in time
is stopped the same way, with the circle of timed waits it may be in (a livelock).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from time import monotonic as _now
from time import sleep as _sleep
from typing import Any

from conclab.core import cleanup, diagnose

from . import vocabulary as testing

_POLL = 0.05


def _name(thread: threading.Thread) -> str:
    """A thread's name as a student knows it (the graders' helper threads lose their prefix)."""
    return thread.name.removeprefix(cleanup.HELPER_PREFIX)


class DeadlockBroken(cleanup.StoppedByGrader):
    """Raised in a thread whose lock wait was part of a deadlock the graders broke."""


class TrackedLock:
    """A lock that reports who holds it and who waits for it.  Offers what the exercises
    may use: acquire(blocking=True, timeout=-1), release(), locked() and `with`."""

    def __init__(self, name: str, table: LockTable):
        self.name = name
        self._table = table
        self._cond = threading.Condition(threading.Lock())
        self.owner: threading.Thread | None = None

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if not blocking and timeout != -1:
            raise ValueError("can't specify a timeout for a non-blocking call")
        me = threading.current_thread()
        if self._table.broken:
            raise DeadlockBroken(f"{me.name} took {self.name} after the graders had stopped the call")
        deadline = None if timeout is None or timeout < 0 else _now() + timeout
        self._table._hold_back(me, untimed=blocking and deadline is None)
        with self._cond:
            if self.owner is not None and blocking:
                self._table._waiting(me, self, timed=deadline is not None)
            try:
                while self.owner is not None:
                    if not blocking:
                        return False
                    if self._table.broken:
                        raise DeadlockBroken(f"{me.name} was waiting for {self.name} in a deadlock")
                    remaining = None if deadline is None else deadline - _now()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._cond.wait(remaining)
                self.owner = me
            finally:
                self._table._done_waiting(me)
        self._table._acquired(me, self)
        return True

    def release(self) -> None:
        me = threading.current_thread()
        with self._cond:
            if self.owner is None:
                raise RuntimeError(f"release of {self.name}, which is not locked")
            if self.owner is not me:
                self._table.misuse.append(f"{me.name} released {self.name}, which {self.owner.name} held")
            owner, self.owner = self.owner, None
            self._cond.notify()
        self._table._released(owner, self)

    def _wake_all(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def locked(self) -> bool:
        return self.owner is not None

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<{self.name}>"


class LockTable:
    def __init__(self, first_hold: float = 0.0):
        self.first_hold = first_hold
        self.broken = False
        self.misuse: list[str] = []
        self._guard = threading.Lock()
        self._holds: dict[threading.Thread, list[TrackedLock]] = {}
        self._waits: dict[threading.Thread, tuple[TrackedLock, bool]] = {}
        self._locks: list[TrackedLock] = []
        self._tried: set[threading.Thread] = set()  # threads kept back once before a timed try

    def lock(self, name: str) -> TrackedLock:
        lock = TrackedLock(name, self)
        self._locks.append(lock)
        return lock

    def break_deadlock(self) -> None:
        """Make every waiting acquire() raise DeadlockBroken, so the stuck threads end."""
        self.broken = True
        for lock in self._locks:
            lock._wake_all()

    # -- bookkeeping, called by the locks
    def _hold_back(self, thread: threading.Thread, untimed: bool) -> None:
        """Keep a thread that holds a lock a moment before it reaches for another: every
        time before a wait without a timeout, only the first time before a timed or
        non-blocking try (retries of a back-off go at full speed)."""
        if not self.first_hold:
            return
        with self._guard:
            if not self._holds.get(thread):
                return
            if not untimed:
                if thread in self._tried:
                    return
                self._tried.add(thread)
        _sleep(self.first_hold)

    def held_by(self, thread: threading.Thread) -> list[TrackedLock]:
        with self._guard:
            return list(self._holds.get(thread, ()))

    def _waiting(self, thread: threading.Thread, lock: TrackedLock, timed: bool) -> None:
        with self._guard:
            self._waits[thread] = (lock, timed)

    def _done_waiting(self, thread: threading.Thread) -> None:
        with self._guard:
            self._waits.pop(thread, None)

    def _acquired(self, thread: threading.Thread, lock: TrackedLock) -> None:
        with self._guard:
            self._holds.setdefault(thread, []).append(lock)

    def _released(self, thread: threading.Thread | None, lock: TrackedLock) -> None:
        with self._guard:
            held = self._holds.get(thread, [])  # type: ignore[arg-type]
            if lock in held:
                held.remove(lock)

    # -- deadlock detection
    def cycle(self, timed: bool = False) -> list[tuple[threading.Thread, TrackedLock]] | None:
        """A circle of threads, each waiting without a timeout for a lock the next one holds
        (with `timed`, waits with a timeout count too)."""
        with self._guard:
            waits = {t: lock for t, (lock, is_timed) in self._waits.items() if timed or not is_timed}
        for start in waits:
            path: list[tuple[threading.Thread, TrackedLock]] = []
            seen: set[threading.Thread] = set()
            thread: threading.Thread | None = start
            while thread is not None and thread in waits and thread not in seen:
                seen.add(thread)
                path.append((thread, waits[thread]))
                thread = waits[thread].owner
            if thread is not None and thread in seen:
                return path[[t for t, _ in path].index(thread) :]
        return None

    def _circle_lines(self, circle: list[tuple[threading.Thread, TrackedLock]]) -> list[str]:
        frames = sys._current_frames()
        lines = []
        for thread, wanted in circle:
            held = self.held_by(thread)
            holds = " and ".join(lock.name for lock in held) or "nothing"
            owner = _name(wanted.owner) if wanted.owner else "nobody"
            lines.append(f"  - {_name(thread)} holds {holds} and waits for {wanted.name}, held by {owner}")
            mine = diagnose.where(frames.get(thread.ident))  # type: ignore[arg-type]
            if mine:
                lines.append(f"      waiting at {mine[0]}")
        return lines

    def describe(self, circle: list[tuple[threading.Thread, TrackedLock]]) -> str:
        lines = ["Deadlock: these threads wait for each other in a circle, so none of them can ever go on:"]
        lines += self._circle_lines(circle)
        lines.append(
            "Each thread took one lock and then waited for one that another thread had taken first. "
            "Break the circle: take the locks in one global order, limit how many threads compete, "
            "or give up the first lock when the second is not free."
        )
        return "\n".join(lines)

    def _too_slow(self, what: str, within: float, job: testing.Job) -> str:
        circle = self.cycle(timed=True)
        for _ in range(10):  # threads that retry are between two tries now and then
            if circle:
                break
            _sleep(_POLL)
            circle = self.cycle(timed=True)
        lines = [f"{what} did not finish within {within:g} s."]
        if circle:
            lines.append(
                "When it was stopped, these threads were waiting for each other in a circle, each trying with a "
                "timeout for a lock the next one holds:"
            )
            lines += self._circle_lines(circle)
            lines.append(
                "A try that times out helps only if the thread then lets go of the lock it holds (and waits a "
                "random moment before it tries again); trying again and again while holding it waits for ever."
            )
        else:
            lines.append(testing.stuck_report([job]))
        return "\n".join(lines)

    def run(self, fn: Callable, *args: Any, what: str, within: float = testing.WAIT, settle: float = 0.3) -> Any:
        """fn(*args) in a helper thread; fail at once, with the circle, if it deadlocks."""
        __tracebackhide__ = True
        job = testing.Job(fn, args, None, what)
        deadline = _now() + within
        first_seen = None
        while not job.wait(_POLL):
            circle = self.cycle()
            if circle is None:
                first_seen = None
            elif first_seen is None:
                first_seen = _now()
            elif _now() - first_seen >= settle:  # the same circle has stood still: no one is moving
                message = self.describe(circle)
                self.break_deadlock()
                job.wait(2.0)
                testing.fail(message)
            if _now() > deadline:
                message = self._too_slow(what, within, job)
                self.break_deadlock()  # the student's threads end at their next lock
                job.wait(2.0)
                testing.fail(message)
        if self.misuse:
            testing.fail("Locks were used wrongly: " + "; ".join(self.misuse[:3]))
        return job.result(0)
