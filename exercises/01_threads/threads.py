"""Topic 01: threads. Start threads, let them run at the same time, join them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


class SquareWorker(threading.Thread):
    """A thread that computes `n * n`.

    `result` is `None` until `run()` has finished; `run()` does the work in the new
    thread, so nothing is computed before `start()` is called.
    """

    def __init__(self, n: int):
        super().__init__()
        self.n = n
        self.result: int | None = None

    def run(self) -> None:
        # TODO: compute n * n here (this runs in the new thread) and store it in self.result.
        raise NotImplementedError("SquareWorker.run")


def run_all(funcs: Sequence[Callable[[], T]]) -> list[T]:
    """Run every function in its own new thread, all at the same time.

    All threads are started before any is joined.  Returns the results in input order.
    If any function raised, re-raises the exception of the first failing function (in
    input order), but only after every thread has finished.  No thread it started is
    alive when it returns.
    """
    # TODO: one thread per function; start them all, then join them all.
    # TODO: keep each result (or exception) at the function's index.
    raise NotImplementedError("run_all")


def start_daemon(target: Callable[..., Any], *args: Any) -> threading.Thread:
    """Start target(*args) in a daemon thread and return the started thread."""
    # TODO: create a daemon thread for target(*args), start it, return it.
    raise NotImplementedError("start_daemon")
