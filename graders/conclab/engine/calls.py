"""Around the call of each topic's test: exceptions raised in threads that nobody caught
fail the test, forced thread switches run in student code, and the tools the graders
measure with are checked before and after (once one has been replaced, no test runs for
real)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from conclab import manifest
from conclab.core import cleanup, diagnose, guard
from conclab.kit import state
from conclab.kit import vocabulary as testing

from . import chaos, integrity, session

thread_errors_key = pytest.StashKey[list]()
chaos_key = pytest.StashKey[chaos.Chaos]()


def format_thread_errors(errors: list[threading.ExceptHookArgs]) -> str:
    parts = []
    for args in errors:
        name = args.thread.name if args.thread is not None else "a thread"
        where = diagnose.raised_at(args.exc_traceback)
        place = f"\n      at {where}" if where else ""
        parts.append(f"  - thread {diagnose.short(name)!r} raised {diagnose.exception_text(args.exc_value)}{place}")
    return "An exception was raised inside a thread and nobody caught it, so it would have been lost:\n" + "\n".join(
        parts
    )


def session_excepthook(previous):
    """The run's threading.excepthook: the graders' own stops are not errors, and formatting
    takes the lock that keeps two tracebacks from being formatted at once."""

    def hook(args: threading.ExceptHookArgs) -> None:
        if issubclass(args.exc_type, cleanup.StoppedByGrader):
            return
        with session.formatting:
            previous(args)

    return hook


@contextmanager
def watched(item: pytest.Item, topic: manifest.Topic) -> Iterator[None]:
    """The test's call, with its threads' exceptions caught, under forced thread switches
    (unless it is marked no_chaos), between two checks of the graders' tools."""
    run = session.run
    assert run is not None
    errors: list[threading.ExceptHookArgs] = []
    item.stash[thread_errors_key] = errors
    previous_hook = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if not issubclass(args.exc_type, cleanup.StoppedByGrader):
            errors.append(args)
        if issubclass(args.exc_type, NotImplementedError):
            state.not_implemented.append(args.exc_value)  # type: ignore[arg-type]

    state.not_implemented.clear()
    check_tools(topic)  # once a tool has been replaced, no test is run for real
    switches = None
    if item.get_closest_marker("no_chaos") is None:
        marker = item.get_closest_marker("chaos")
        rate = marker.kwargs.get("rate", chaos.DEFAULT_RATE) if marker else chaos.DEFAULT_RATE
        rate = rate if run.chaos_on else 0.0
        switches = chaos.Chaos(f"{run.seed}:{item.nodeid}", rate)
        item.stash[chaos_key] = switches
    state.tracer = switches
    threading.excepthook = hook
    if switches:
        switches.start()
    try:
        with outcomes_fail():
            yield
    finally:
        if switches:
            switches.stop()
        state.tracer = None
        threading.excepthook = previous_hook
        check_tools(topic)
    if errors:
        testing.fail(format_thread_errors(errors))


@contextmanager
def outcomes_fail() -> Iterator[None]:
    """A skip, an xfail, an exit, a fail or any other BaseException raised by the student's
    code fails the test as an error of that code: only the graders' own decide an outcome."""
    try:
        yield
    except BaseException as exc:
        if testing.outcome_from_student(exc) and not state.interrupted:
            testing.fail(testing.outcome_message(exc))
        raise


def check_tools(topic: manifest.Topic) -> None:
    """Fail the test, and every test of the run, once student code has replaced a tool the
    graders measure with (integrity.py)."""
    run = session.run
    assert run is not None
    if not run.cheat and guard.refusals:
        run.cheat = integrity.refused(guard.refusals)
    if not run.cheat and run.tools is not None:
        replaced = run.tools.changed()
        if replaced:
            run.cheat = integrity.message(replaced, topic.filename)
            run.tools.restore()
    if run.cheat:
        testing.fail(run.cheat)
