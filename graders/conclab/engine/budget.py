"""Time budgets: each test of a topic gets the topic's budget as its pytest-timeout value.
When it runs out, the test fails with a picture of where every thread is; a backstop ends
the run if even that cannot stop the test, and a C-level timer ends it if no Python thread
can run at all."""

from __future__ import annotations

import faulthandler
import os
import signal
import threading

import pytest

from conclab.core import cleanup, diagnose
from conclab.kit import state
from conclab.kit import vocabulary as testing

from . import session

#: The exit status of a run ended by the backstop.
BACKSTOP_EXIT = 3

_cancel_key = pytest.StashKey[object]()


def apply(items: list[pytest.Item]) -> None:
    """The topic's budget for every test of a topic that sets no timeout of its own."""
    for item in items:
        topic = session.topic_of(item)
        if topic is not None and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(topic.budget))


def _timeout_message(budget: float, main_frame) -> str:
    lines = [f"This test took longer than its time budget of {budget:g} s and was stopped."]
    mine = diagnose.where(main_frame)
    if mine:
        lines.append(f"The test was waiting in your code at {mine[0]}.")
    lines.append(testing.stuck_report())
    return "\n".join(lines)


def start(item: pytest.Item, budget: float | None) -> None:
    """Our own timer for pytest-timeout's per-test budget: a readable failure, then a backstop."""
    if not budget or budget <= 0:
        return
    test_thread = threading.current_thread()
    use_signal = hasattr(signal, "SIGALRM") and test_thread is threading.main_thread()
    timers: list[threading.Timer] = []

    if use_signal:

        def on_alarm(signum, frame):
            __tracebackhide__ = True
            testing.fail(_timeout_message(budget, frame))

        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, budget)
    else:

        class TestOverBudget(cleanup.OverBudget):
            pass

        TestOverBudget.__name__ = f"TestTookLongerThan{int(budget)}s"
        timer = threading.Timer(budget, cleanup.inject, (test_thread, TestOverBudget))
        timer.name, timer.daemon = cleanup.HELPER_PREFIX + "budget", True
        timers.append(timer)

    terminal = _terminal_fd(item.config)

    def backstop() -> None:
        threads = diagnose.all_threads_report()
        message = (
            f"\nconclab: {item.nodeid} is still running {grace:g} s after its time budget of {budget:g} s "
            f"ran out and cannot be stopped; ending the run.\n{threads}\n"
        )
        run = session.run
        if run is not None and run.writer is not None:
            run.writer.test(
                item.nodeid,
                "failed",
                budget + grace,
                f"This test took longer than its time budget of {budget:g} s and could not be "
                f"stopped, so the grading of this topic ended here.\n{threads}",
            )
        abandon_run(terminal, message, BACKSTOP_EXIT)

    grace = max(10.0, budget)
    stop = threading.Timer(budget + grace, backstop)
    stop.name, stop.daemon = cleanup.HELPER_PREFIX + "backstop", True
    timers.append(stop)
    for timer in timers:
        timer.start()
    # The last resort, for code that holds the GIL for ever (so no Python thread can run):
    # a C-level timer that prints every thread's stack and exits.
    faulthandler.dump_traceback_later(budget + grace + 10, exit=True, file=terminal)

    def cancel() -> None:
        state.start_budget(None)
        faulthandler.cancel_dump_traceback_later()
        if use_signal:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        for timer in timers:
            timer.cancel()

    item.stash[_cancel_key] = cancel
    state.start_budget(budget)


def cancel(item: pytest.Item) -> None:
    cancel = item.stash.get(_cancel_key, None)
    if cancel is not None:
        cancel()  # type: ignore[operator]
        del item.stash[_cancel_key]


def abandon_run(fd: int, message: str, status: int) -> None:
    """Say why on `fd`, kill every child process, and leave now, without waiting for
    whatever cannot be stopped."""
    os.write(fd, message.encode("utf-8", "replace"))
    cleanup.kill_processes(list(cleanup.descendants().values()))
    cleanup.hard_exit(status)


def _terminal_fd(config: pytest.Config) -> int:
    """A file descriptor of the real terminal (or log): while a test runs, pytest's capture
    has fd 1 pointing at a temporary file, and what is written there is lost on exit."""
    capman = config.pluginmanager.getplugin("capturemanager")
    out = getattr(getattr(capman, "_global_capturing", None), "out", None)
    saved = getattr(out, "targetfd_save", None)
    return saved if isinstance(saved, int) else 1
