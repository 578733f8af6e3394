"""Topic 05: events. An Event built from a Condition, and a ticker that stops at once."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Event:
    """A flag that threads can wait for: set() wakes every waiting thread."""

    def __init__(self) -> None:
        self._flag = False
        self._cond = threading.Condition(threading.Lock())

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        with self._cond:
            self._flag = True
            self._cond.notify_all()

    def clear(self) -> None:
        with self._cond:
            self._flag = False

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the flag is set, or `timeout` seconds.  True if the flag was set
        (even if it was cleared again before this thread ran), False on timeout."""
        with self._cond:
            signaled = self._flag
            if not signaled:
                signaled = self._cond.wait(timeout)
            return signaled


class Ticker(threading.Thread):
    """Calls callback() every `interval` seconds, the first time one interval after
    start(), until stop().  stop() returns promptly, however long the interval."""

    def __init__(self, interval: float, callback: Callable[[], object]):
        super().__init__(daemon=True)
        self.interval = interval
        self.callback = callback
        self._stopped = Event()

    def run(self) -> None:
        while not self._stopped.wait(self.interval):
            self.callback()

    def stop(self) -> None:
        """Stop ticking and wait for the thread to end; calling it again does nothing."""
        self._stopped.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join()
