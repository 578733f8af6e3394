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
        # TODO: ValueError if capacity < 1.
        self._capacity = capacity
        self._items: deque[Any] = deque()
        self._closed = False
        # TODO: one lock, and two threading.Condition objects built on it:
        #       one for producers waiting for room, one for consumers waiting for items.

    def put(self, item: Any, timeout: float | None = None) -> None:
        # TODO: wait (in a while loop!) while the buffer is full; TimeoutError after `timeout`;
        #       Closed if the buffer is closed; then append and wake a consumer.
        raise NotImplementedError("BoundedBuffer.put")

    def get(self, timeout: float | None = None) -> Any:
        # TODO: wait while the buffer is empty; TimeoutError after `timeout`; Closed once it
        #       is closed AND empty; then take the oldest item and wake a producer.
        raise NotImplementedError("BoundedBuffer.get")

    def close(self) -> None:
        # TODO: mark the buffer closed and wake every waiting put and get.
        raise NotImplementedError("BoundedBuffer.close")

    def __len__(self) -> int:
        # TODO: the number of items, read under the lock.
        raise NotImplementedError("BoundedBuffer.__len__")


def _remaining(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    return max(0.0, deadline - time.monotonic())
