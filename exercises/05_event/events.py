"""Topic 05: events. An Event built from a Condition, and a ticker that stops at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Event:
    """A flag that threads can wait for: set() wakes every waiting thread."""

    def __init__(self) -> None:
        self._flag = False
        self._cond = threading.Condition(threading.Lock())

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        # TODO: set the flag and wake every waiting thread.
        raise NotImplementedError("Event.set")

    def clear(self) -> None:
        # TODO: reset the flag, under the condition's lock.
        raise NotImplementedError("Event.clear")

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the flag is set, or `timeout` seconds.  True if the flag was set
        (even if it was cleared again before this thread ran), False on timeout."""
        # TODO: like threading.Event.wait: if the flag is not set, wait on the condition.
        raise NotImplementedError("Event.wait")


class Ticker(threading.Thread):
    """Calls callback() every `interval` seconds, the first time one interval after
    start(), until stop().  stop() returns promptly, however long the interval."""

    def __init__(self, interval: float, callback: Callable[[], object]):
        super().__init__(daemon=True)
        self.interval = interval
        self.callback = callback
        self._stopped = False

    def run(self) -> None:
        # TODO: time.sleep cannot be interrupted, so stop() has to wait up to a whole
        #       interval. Wait on an Event with the interval as timeout instead.
        while not self._stopped:
            time.sleep(self.interval)
            if not self._stopped:
                self.callback()

    def stop(self) -> None:
        """Stop ticking and wait for the thread to end; calling it again does nothing."""
        # TODO: tell run() to stop (so that it wakes up at once), then join the thread.
        #       A second call must do no harm.
        raise NotImplementedError("Ticker.stop")
