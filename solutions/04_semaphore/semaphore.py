"""Topic 04: semaphores. A counting semaphore built from a Condition, and a map that
never runs more than `limit` calls at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any


class Semaphore:
    """A counter of free permits: acquire() takes one, waiting while there are none;
    release(n) gives n back.  Any thread may call either, in any order."""

    def __init__(self, value: int = 1):
        if value < 0:
            raise ValueError(f"semaphore initial value must be >= 0, got {value}")
        self._value = value
        self._cond = threading.Condition(threading.Lock())

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take a permit.  Returns True once taken; False if blocking is False and none is
        free, or if none became free within `timeout` seconds."""
        if not blocking and timeout is not None:
            raise ValueError("can't specify timeout for non-blocking acquire")
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._value == 0:
                if not blocking:
                    return False
                if deadline is None:
                    self._cond.wait()
                else:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._cond.wait(remaining)
            self._value -= 1
            return True

    def release(self, n: int = 1) -> None:
        """Give back n permits, waking up to n waiting threads."""
        if n < 1:
            raise ValueError("n must be one or more")
        with self._cond:
            self._value += n
            self._cond.notify(n)

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def bounded_map(func: Callable[[Any], Any], items: Iterable[Any], limit: int) -> list:
    """func(item) for every item, one thread per item, never more than `limit` of them
    inside func at once.  Results in input order; the first exception (in input order)
    is re-raised after all threads finished."""
    items = list(items)
    gate = threading.BoundedSemaphore(limit)
    results: list[Any] = [None] * len(items)
    errors: list[BaseException | None] = [None] * len(items)

    def work(i: int) -> None:
        with gate:
            try:
                results[i] = func(items[i])
            except BaseException as exc:
                errors[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(items))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for error in errors:
        if error is not None:
            raise error
    return results
