"""Topic 03: conditions. A bounded buffer for producers and consumers."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any


class Closed(Exception):
    """The buffer is closed: no more puts, and no more gets once it is empty."""


class BoundedBuffer:
    """A FIFO buffer holding at most `capacity` items, shared by producer and consumer threads.

    put() waits while the buffer is full, get() waits while the buffer is empty.  Both accept a
    timeout in seconds (None: wait as long as needed) and raise TimeoutError when it runs
    out.  close() wakes every waiting thread: put raises Closed at once, get raises Closed
    once the items already in the buffer are gone.
    """

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._capacity = capacity
        self._items: deque[Any] = deque()
        self._closed = False
        lock = threading.Lock()
        self._not_full = threading.Condition(lock)   # producers wait here
        self._not_empty = threading.Condition(lock)  # consumers wait here

    def put(self, item: Any, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._not_full:
            while len(self._items) >= self._capacity and not self._closed:
                if not self._not_full.wait(_remaining(deadline)):
                    if len(self._items) >= self._capacity and not self._closed:
                        raise TimeoutError(f"buffer still full after {timeout} s")
            if self._closed:
                raise Closed("put on a closed buffer")
            self._items.append(item)
            self._not_empty.notify()

    def get(self, timeout: float | None = None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._not_empty:
            while not self._items and not self._closed:
                if not self._not_empty.wait(_remaining(deadline)):
                    if not self._items and not self._closed:
                        raise TimeoutError(f"buffer still empty after {timeout} s")
            if not self._items:
                raise Closed("get on a closed, empty buffer")
            item = self._items.popleft()
            self._not_full.notify()
            return item

    def close(self) -> None:
        with self._not_full:
            self._closed = True
            self._not_full.notify_all()
            self._not_empty.notify_all()

    def __len__(self) -> int:
        with self._not_full:
            return len(self._items)


def _remaining(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    return max(0.0, deadline - time.monotonic())
