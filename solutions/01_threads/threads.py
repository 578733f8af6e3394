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
        self.result = self.n * self.n


def run_all(funcs: Sequence[Callable[[], T]]) -> list[T]:
    """Run every function in its own new thread, all at the same time.

    All threads are started before any is joined.  Returns the results in input order.
    If any function raised, re-raises the exception of the first failing function (in
    input order), but only after every thread has finished.  No thread it started is
    alive when it returns.
    """
    results: list[Any] = [None] * len(funcs)
    errors: list[BaseException | None] = [None] * len(funcs)

    def work(i: int) -> None:
        try:
            results[i] = funcs[i]()
        except BaseException as exc:  # kept, and raised in the calling thread
            errors[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(funcs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for error in errors:
        if error is not None:
            raise error
    return results


def start_daemon(target: Callable[..., Any], *args: Any) -> threading.Thread:
    """Start target(*args) in a daemon thread and return the started thread."""
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread
