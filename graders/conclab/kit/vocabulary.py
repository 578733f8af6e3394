"""Calls, threads and records: the part of the graders' vocabulary that concerns threads.
Graders import it from `conclab.testing`, whose docstring lists every name.

Nothing here waits without a bound, and every failure says what was expected, what
happened and where the student's threads are.  Clocks and threading classes are bound
when this module is imported, before any student module, so student code that patches
`time` or `threading` does not change what the graders measure.
"""

from __future__ import annotations

import gc
import sys
import threading
import warnings
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from time import monotonic as _now
from time import perf_counter as _clock
from time import sleep as _sleep
from typing import Any, NoReturn

import pytest

from conclab.core import cleanup, diagnose
from conclab.core.cleanup import HELPER_PREFIX

from . import state

_Thread = threading.Thread
_Condition = threading.Condition
_Lock = threading.Lock
_Event = threading.Event
_enumerate = threading.enumerate
_current_thread = threading.current_thread

#: How long an operation that should be quick may take before it counts as stuck.
#: Generous: a loaded 2-core machine with forced thread switches is slow, and a stuck
#: thread is stuck for ever, so a long bound costs only the time of a failing test.
WAIT = 3.0
#: How long a call must stay blocked before we believe it is really waiting.
BLOCK = 0.3


def fail(message: str) -> NoReturn:
    """Fail the current test with `message` only (no traceback of the grader's code)."""
    __tracebackhide__ = True
    pytest.fail(message, pytrace=False)


def expect(condition: object, message: str) -> None:
    __tracebackhide__ = True
    if not condition:
        fail(message)


def _describe_call(fn: Callable, args: tuple, kwargs: dict) -> str:
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    shown = [repr(a) for a in args[:3]] + [f"{k}={v!r}" for k, v in list(kwargs.items())[:2]]
    if len(args) > 3 or len(kwargs) > 2:
        shown.append("...")
    text = ", ".join(shown)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{name}({text})"


def _others(exclude: Iterable[threading.Thread] = ()) -> list[threading.Thread]:
    """Threads worth showing a student: alive, not the main thread, not pytest's own."""
    skip = {t.ident for t in exclude} | {threading.main_thread().ident, threading.get_ident()}
    return [
        t
        for t in _enumerate()
        if t.ident not in skip
        and t not in state.session_threads
        and t not in state.test_threads
        and not t.name.startswith(HELPER_PREFIX + "budget")
        and not t.name.startswith(HELPER_PREFIX + "backstop")
    ]


def time_left() -> float | None:
    """Seconds left of the running test's time budget; None when it has no budget.  For a
    check that may take longer under load (a speed-up measurement) to stop in time and give
    its verdict, instead of being stopped as stuck."""
    return state.time_left()


def stuck_report(jobs: Iterable[Job] = (), threads: Iterable[threading.Thread] = ()) -> str:
    """Where every relevant thread is: the given jobs' calls first, then the student's threads."""
    frames = sys._current_frames()
    lines = []
    jobs = list(jobs)
    for job in jobs:
        if job.running:
            text = diagnose.describe(job.thread, frames.get(job.thread.ident))  # type: ignore[arg-type]
            text = text.replace(f"daemon thread {job.thread.name!r}", f"the call {job.what}", 1)
            lines.append("  - " + text)
    shown = {job.thread.ident for job in jobs}
    for thread in list(threads) + _others([job.thread for job in jobs]):
        if thread.ident in shown or not thread.is_alive():
            continue
        shown.add(thread.ident)
        text = diagnose.describe(thread, frames.get(thread.ident))  # type: ignore[arg-type]
        if thread.name.startswith(HELPER_PREFIX):
            if not diagnose.where(frames.get(thread.ident)):  # type: ignore[arg-type]
                continue  # a helper of the grader's that is not inside student code
            text = text.replace(f"daemon thread {thread.name!r}", f"the call {thread.name[len(HELPER_PREFIX) :]}", 1)
        lines.append("  - " + text)
    if not lines:
        return "No other thread is running."
    return "Where the threads are now:\n" + "\n".join(lines)


class Job:
    """One call running in a helper thread of the grader's, so the test never blocks on it."""

    def __init__(self, fn: Callable, args: tuple = (), kwargs: dict | None = None, what: str | None = None):
        kwargs = kwargs or {}
        self.what = what or _describe_call(fn, args, kwargs)
        self.value: Any = None
        self.error: BaseException | None = None
        self.started_at = _now()
        self.finished_at: float | None = None
        self._done = _Event()

        def body() -> None:
            try:
                self.value = fn(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - handed to the test, not lost
                self.error = exc
                if isinstance(exc, NotImplementedError):
                    state.not_implemented.append(exc)
            finally:
                self.finished_at = _now()
                state.running_jobs.discard(self)
                self._done.set()

        self.thread = _Thread(target=body, name=HELPER_PREFIX + self.what, daemon=True)
        state.running_jobs.add(self)
        self.thread.start()

    @property
    def running(self) -> bool:
        return not self._done.is_set()

    @property
    def duration(self) -> float | None:
        return None if self.finished_at is None else self.finished_at - self.started_at

    def wait(self, timeout: float) -> bool:
        return self._done.wait(timeout)

    def finished(self, within: float = WAIT) -> Job:
        """Wait for the call to end (without raising its error); fail if it does not."""
        __tracebackhide__ = True
        if not self._done.wait(within):
            fail(f"{self.what} did not return within {within:g} s: it seems stuck.\n{stuck_report([self])}")
        return self

    def result(self, within: float = WAIT) -> Any:
        """The call's return value; its exception is raised here, in the test."""
        __tracebackhide__ = True
        self.finished(within)
        if isinstance(self.error, (KeyboardInterrupt, SystemExit)):
            # Raised here, either would end the whole test run, not fail this test.
            where = diagnose.raised_at(self.error.__traceback__)
            fail(
                f"{self.what} raised {type(self.error).__name__}"
                + (f" at {where}" if where else "")
                + ": that stops a whole program, and no function of the exercise should raise it."
            )
        if outcome_from_student(self.error):
            fail(outcome_message(self.error))
        if self.error is not None:
            raise self.error
        return self.value


def shown(value: Any) -> str:
    """A value of the code under test (an exception it raised, mostly) as a message shows it:
    its type and at most 200 characters of its text."""
    if isinstance(value, BaseException):
        return diagnose.exception_text(value)
    return diagnose.short(repr(value))


def outcome_from_student(error: BaseException | None) -> bool:
    """An exception that is not an Exception (pytest's skip, xfail, exit and fail, SystemExit,
    KeyboardInterrupt, a BaseException of the student's own), raised by the student's code: it
    would decide the test's outcome, or end the run, instead of failing the test."""
    return (
        error is not None
        and not isinstance(error, (Exception, cleanup.StoppedByGrader, cleanup.OverBudget))
        and diagnose.raised_by_student(error.__traceback__)
    )


def outcome_message(error: BaseException) -> str:
    where = diagnose.raised_at(error.__traceback__)
    return (
        f"Your code raised {type(error).__name__}" + (f" ({where})" if where else "") + ": an exception that "
        "would skip the test, end it, or stop the whole run, instead of being an error of your code. Only the "
        "graders decide a test's outcome: raise an ordinary exception (an Exception subclass) instead."
    )


@contextmanager
def raises(expected: type[BaseException] | tuple[type[BaseException], ...], promise: str):
    """`with raises(ValueError, "BankAccount(-1) should raise ValueError"):` the block must raise
    `expected`; otherwise the test fails with the promise, in the student's words, and what
    happened instead.  Yields a list that holds the exception once the block has raised it."""
    __tracebackhide__ = True
    caught: list[BaseException] = []
    try:
        yield caught
    except expected as exc:
        caught.append(exc)
        return
    except (cleanup.StoppedByGrader, cleanup.OverBudget):
        raise
    except BaseException as exc:
        if isinstance(exc, pytest.fail.Exception) or outcome_from_student(exc):
            raise
        where = diagnose.raised_at(exc.__traceback__)
        fail(f"{promise}, but it raised {shown(exc)}" + (f" ({where})" if where else "") + " instead.")
    fail(f"{promise}, but it raised nothing: it went on as if the call were fine.")


def start(fn: Callable, *args: Any, what: str | None = None, **kwargs: Any) -> Job:
    return Job(fn, args, kwargs, what)


def call(fn: Callable, *args: Any, within: float = WAIT, what: str | None = None, **kwargs: Any) -> Any:
    """fn(*args, **kwargs), run so that a hang fails the test instead of freezing it."""
    __tracebackhide__ = True
    return Job(fn, args, kwargs, what).result(within)


def blocks(fn: Callable, *args: Any, for_: float = BLOCK, what: str | None = None, **kwargs: Any) -> Job:
    """Start fn and check it is still waiting after `for_` seconds; returns its Job."""
    __tracebackhide__ = True
    job = Job(fn, args, kwargs, what)
    if job.wait(for_):
        outcome = f"raised {diagnose.exception_text(job.error)}" if job.error else f"returned {job.value!r}"
        fail(f"{job.what} should have waited, but it {outcome} straight away.")
    return job


def join_within(threads: Iterable[threading.Thread], within: float) -> list[threading.Thread]:
    """Join every thread with one shared deadline; return those still running after it."""
    threads = list(threads)
    deadline = _now() + within
    for thread in threads:
        thread.join(max(0.0, deadline - _now()))
    return [t for t in threads if t.is_alive()]


def join_all(threads: Iterable[threading.Thread], within: float = WAIT, what: str = "the threads") -> None:
    """Join every thread with one shared deadline; fail naming each one still running."""
    __tracebackhide__ = True
    threads = list(threads)
    stuck = join_within(threads, within)
    if stuck:
        fail(
            f"{len(stuck)} of {len(threads)} of {what} were still running after {within:g} s.\n"
            f"{stuck_report(threads=stuck)}"
        )


def run_threads(n: int, fn: Callable[[int], Any], within: float = WAIT, what: str | None = None) -> list[Any]:
    """Run fn(0) .. fn(n - 1) in n threads started together; return their results in order.

    An exception in any of them is raised here once all have finished (or, if the others
    then hang, one second later: a crashed thread often leaves the rest waiting)."""
    __tracebackhide__ = True
    jobs = [Job(fn, (i,), None, f"{what or getattr(fn, '__name__', 'worker')} #{i}") for i in range(n)]
    deadline = _now() + within
    while any(job.running for job in jobs) and _now() < deadline:
        if any(job.error is not None for job in jobs):
            deadline = min(deadline, _now() + 1.0)
        next(job for job in jobs if job.running).wait(min(0.05, max(0.0, deadline - _now())))
    errors = [job for job in jobs if job.error is not None]
    stuck = [job for job in jobs if job.running]
    if errors:
        raise errors[0].error
    if stuck:
        fail(f"{len(stuck)} of {n} threads did not finish within {within:g} s.\n{stuck_report(stuck)}")
    return [job.value for job in jobs]


def wait_until(
    predicate: Callable[[], object], within: float = WAIT, what: str = "the condition", every: float = 0.005
) -> None:
    """Poll a condition of the test's own (never the student's code path) until it holds."""
    __tracebackhide__ = True
    deadline = _now() + within
    while not predicate():
        if _now() > deadline:
            fail(f"{what} did not happen within {within:g} s.\n{stuck_report()}")
        _sleep(every)


def lines_run_while(seconds: float, settle: float = 0.2) -> int:
    """Lines of student code run, in any thread, during `seconds` (after `settle` seconds).

    A thread blocked in Condition.wait or Lock.acquire runs none; a polling or busy loop
    runs many."""
    __tracebackhide__ = True
    if state.tracer is None:
        fail("lines_run_while needs the trace of student code: this test must not be marked no_chaos.")
    _sleep(settle)
    before = state.tracer.lines
    _sleep(seconds)
    return state.tracer.lines - before


def drain(q: Any, count: int, timeout: float = 1.0) -> list:
    """Up to `count` items from a (multiprocessing) queue, in order, waiting at most
    `timeout` seconds for each; stops early at the first wait that runs out."""
    import queue

    items = []
    try:
        for _ in range(count):
            items.append(q.get(timeout=timeout))
    except queue.Empty:
        pass
    return items


@contextmanager
def no_pool_left(what):
    """Fail if the block leaves a pool running: worker processes still there afterwards,
    or a Pool object thrown away while still running (Python warns "unclosed running
    multiprocessing pool" when it collects one)."""
    before = cleanup.process_ids()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield
        gc.collect()
    unclosed = [w for w in caught if "unclosed running multiprocessing pool" in str(w.message)]
    expect(
        not unclosed,
        f"{what} returned without closing its pool: the Pool was thrown away while still running "
        '(Python warned "unclosed running multiprocessing pool"). Use `with multiprocessing.Pool(...) as pool:`, '
        "which stops the workers at the end of the block.",
    )
    left = cleanup.started_since(before)
    expect(
        not left,
        f"{what} returned while {len(left)} worker process(es) of its pool were still there. Use "
        "`with multiprocessing.Pool(...) as pool:` (or pool.close() and pool.join()), so that no process outlives "
        "the call.",
    )


def uses_module(module: Any, name: str) -> bool:
    """Whether the student's module file imports `name` (import name / from name import ...)."""
    import ast

    source = open(module.__file__, encoding="utf-8").read()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == name for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == name:
            return True
    return False


class EventLog:
    """A thread-safe, ordered record: log.add("put", 1) from any thread, log.events after."""

    def __init__(self) -> None:
        self._lock = _Lock()
        self.events: list[tuple] = []

    def add(self, *event: Any) -> None:
        with self._lock:
            self.events.append(event if len(event) != 1 else event[0])

    def __len__(self) -> int:
        return len(self.events)

    def index(self, event: Any) -> int:
        return self.events.index(event)

    def count(self, event: Any) -> int:
        return self.events.count(event)


class Overlap:
    """`with overlap:` around a piece of work; afterwards `overlap.max` is the most threads
    that were inside at the same moment, and `overlap.threads` who was ever inside."""

    def __init__(self, hold: float = 0.0) -> None:
        self.hold = hold
        self._lock = _Lock()
        self.now = 0
        self.max = 0
        self.entries = 0
        self.threads: set[str] = set()

    def __enter__(self) -> Overlap:
        with self._lock:
            self.now += 1
            self.entries += 1
            self.max = max(self.max, self.now)
            self.threads.add(_current_thread().name)
        if self.hold:
            _sleep(self.hold)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.now -= 1


class Timeline:
    """Who ran when, drawn as text bars, one row per thread (or process), so that a failure
    shows at a glance whether the work overlapped or ran one piece after another:

        with timeline.span():                  # in any thread: a bar in that thread's row
            ...
        timeline.add("process 4121", start, end)   # a span measured elsewhere (perf_counter)
        expect(..., f"They ran one after another:\n{timeline.picture()}")
    """

    WIDTH = 48

    def __init__(self) -> None:
        self._lock = _Lock()
        self.spans: list[tuple[str, float, float]] = []

    def add(self, row: str, start: float, end: float) -> None:
        with self._lock:
            self.spans.append((row, start, max(start, end)))

    @contextmanager
    def span(self, row: str | None = None):
        start = _clock()
        try:
            yield
        finally:
            self.add(row or _current_thread().name, start, _clock())

    def picture(self, width: int = WIDTH) -> str:
        """The bars, rows in the order they first ran, under a scale in seconds."""
        with self._lock:
            spans = sorted(self.spans, key=lambda span: span[1])
        if not spans:
            return "    (nothing ran)"
        first, last = spans[0][1], max(end for _, _, end in spans)
        scale = (last - first) or 1e-9
        rows: dict[str, list[str]] = {}
        for row, start, end in spans:
            cells = rows.setdefault(row, ["\u00b7"] * width)
            begin = min(width - 1, int((start - first) / scale * width))
            for i in range(begin, max(begin + 1, min(width, round((end - first) / scale * width)))):
                cells[i] = "\u2588"
        label = min(24, max(len(row) for row in rows))
        total = f"{last - first:.2f} s"
        lines = [f"    {'':<{label}}  0 s{total:>{width - 3}}"]
        lines += [f"    {row[:label]:<{label}}  {''.join(cells)}" for row, cells in rows.items()]
        if len(spans) > 1 and all(later[1] >= earlier[2] for earlier, later in zip(spans, spans[1:])):
            lines.append("    (one after another: each started only once the one before had ended)")
        return "\n".join(lines)


class Rendezvous:
    """A meeting point for n threads: arrive() returns True once all n are there together,
    or False after `within` seconds.  It never raises into student code, and afterwards
    `max_together` tells how many were ever waiting at once.  A sequential implementation
    reaches only 1, whatever the timing, so this proves concurrency without a stopwatch."""

    def __init__(self, n: int, within: float = WAIT) -> None:
        self.n = n
        self.within = within
        self._cond = _Condition(_Lock())
        self._present = 0
        self._opened = False
        self._gave_up = False
        self.max_together = 0
        self.arrivals = 0

    def arrive(self) -> bool:
        with self._cond:
            self.arrivals += 1
            self._present += 1
            self.max_together = max(self.max_together, self._present)
            if self._present >= self.n:
                self._opened = True
                self._cond.notify_all()
            # Once one arrival has waited in vain, the others do not wait again: the
            # verdict (not concurrent enough) is known, and a slow failure helps nobody.
            opened = self._cond.wait_for(lambda: self._opened or self._gave_up, timeout=self.within)
            if not opened:
                self._gave_up = True
                self._cond.notify_all()
            self._present -= 1
            return self._opened

    @property
    def opened(self) -> bool:
        return self._opened


class InFlight:
    """A fetch(url) for I/O-bound graders: each call waits, like a download, at a
    Rendezvous of n, inside an Overlap, and returns result(url).  check() then fails
    unless exactly n calls were ever in flight at once."""

    def __init__(self, n: int, result: Callable[[str], Any] = len) -> None:
        self.n = n
        self.result = result
        self.meeting = Rendezvous(n)
        self.overlap = Overlap(hold=0.01)
        self.timeline = Timeline()

    def __call__(self, url: str) -> Any:
        with self.timeline.span(), self.overlap:
            self.meeting.arrive()
        return self.result(url)

    def check(self, setting: str, hint: str) -> None:
        """setting names the limit for the student ("workers=3"); hint says how to reach it."""
        expect(
            self.meeting.max_together == self.n,
            f"With {setting}, {self.n} fetches should wait for the network at the same time; at most "
            f"{self.meeting.max_together} did. {hint}\nWhen each fetch waited, one row per thread:\n"
            f"{self.timeline.picture()}",
        )
        expect(
            self.overlap.max <= self.n,
            f"With {setting}, {self.overlap.max} fetches ran at once: never more than {self.n}.",
        )


def _live_threads() -> set[threading.Thread]:
    """The threads alive now, as objects (an ident may be reused once its thread has ended)."""
    return {t for t in _enumerate() if t.is_alive() and not t.name.startswith(HELPER_PREFIX)}


@contextmanager
def no_new_threads(what: str, ending: float = 0.0):
    """Fail if the block returns while a thread it started is still alive.  With `ending`,
    a thread that ends on its own within that many seconds is not left behind: a thread the
    code rightly does not join (a server's client thread that has already left the server's
    books) may still be running its last lines when the block returns."""
    __tracebackhide__ = True
    before = _live_threads()
    yield
    deadline = _now() + ending
    while (left := _live_threads() - before) and _now() < deadline:
        for thread in left:
            thread.join(max(0.0, min(0.05, deadline - _now())))
    left = sorted(left, key=lambda t: t.name)
    if left:
        names = ", ".join(repr(t.name) for t in left)
        fail(
            f"{what} returned while {len(left)} thread(s) it started were still running ({names}).\n"
            f"Join every thread you start before returning.\n{stuck_report(threads=left)}"
        )


def wake_in_vain(
    wait: Callable[[], Any],
    give_and_take: Callable[[], bool],
    give: Callable[[], Any],
    what: str,
    settle: float = BLOCK,
    rounds: int = 5,
) -> tuple[Job, bool]:
    """Wake a waiting call in vain, and see whether it waits again (a `while` around
    Condition.wait) or goes on as if it had got what it waited for (an `if`).

    wait() is a call that must wait (a get() on an empty buffer); give_and_take(), run here,
    gives it what it waits for and takes it back at once, returning False if the waiter was
    quicker and took it; give() then gives it for good.  Returns the waiter's Job and whether it
    ended (returned or raised) after the wake-up that gave it nothing.  A round in which the
    waiter was quicker proves nothing and is tried again.  Mark the test no_chaos: no forced
    switch may come between the give and the take."""
    __tracebackhide__ = True
    for _ in range(rounds):
        job = blocks(wait, for_=settle, what=what)
        if not give_and_take():
            job.finished()
            continue
        if job.wait(settle):
            return job, True
        give()
        job.finished()
        return job, False
    return job, False


def woken_in_vain_until_the_timeout(
    start_waiter: Callable[[], Job],
    give_and_take: Callable[[], bool],
    within: float,
    every: float = 0.1,
    attempts: int = 3,
) -> tuple[Job, int]:
    """A timed wait woken again and again in vain: start_waiter() starts the call (with its
    timeout); every `every` seconds give_and_take(), run here, gives it what it waits for and
    takes it back at once (False if the waiter was quicker and took it).  This goes on while the
    call runs, for at most `within` seconds from its start.  Returns the call's Job (still running
    if it never gave up) and how many times it was woken in vain.  An attempt in which the waiter
    was quicker proves nothing and is tried again.  Mark the test no_chaos."""
    __tracebackhide__ = True
    for _ in range(attempts):
        job, wakes, quicker = start_waiter(), 0, False
        while job.running and _now() - job.started_at < within:
            job.wait(min(every, max(0.0, job.started_at + within - _now())))
            if job.running and _now() - job.started_at < within:
                if give_and_take():
                    wakes += 1
                else:
                    quicker = True
                    break
        if not quicker:
            return job, wakes
        job.finished()
    return job, wakes
