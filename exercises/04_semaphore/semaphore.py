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
        # TODO: ValueError if value is negative.
        self._value = value
        self._cond = threading.Condition(threading.Lock())

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take a permit.  Returns True once taken; False if blocking is False and none is
        free, or if none became free within `timeout` seconds."""
        # TODO: the same rules as threading.Semaphore.acquire:
        #   - blocking=False with a timeout is a ValueError;
        #   - blocking=False never waits: True if a permit was free, else False;
        #   - otherwise wait (in a while loop) until a permit is free, or the timeout runs out.
        raise NotImplementedError("Semaphore.acquire")

    def release(self, n: int = 1) -> None:
        """Give back n permits, waking up to n waiting threads."""
        # TODO: ValueError if n < 1; add n permits and wake up to n waiters.
        raise NotImplementedError("Semaphore.release")

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def bounded_map(func: Callable[[Any], Any], items: Iterable[Any], limit: int) -> list:
    """func(item) for every item, one thread per item, never more than `limit` of them
    inside func at once.  Results in input order; the first exception (in input order)
    is re-raised after all threads finished."""
    # TODO: one thread per item, all started; a semaphore of `limit` permits around func.
    raise NotImplementedError("bounded_map")
