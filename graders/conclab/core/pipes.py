"""A pipe a child process writes into, read by a thread of ours as the child goes.

The child gets the write end (`fd`, to pass on with subprocess's pass_fds); once it has
started, `handed_over()` closes our copy, so the pipe ends when the child (and whatever
it started that kept the end) has closed it.  Reading stops after `cap` bytes, so a child
cannot fill our memory, and `close()` waits for the last of it only for a moment, not for a
process left behind that still holds the pipe.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Callable


class Inbox:
    def __init__(self, cap: int, take: Callable[[bytes], None] | None = None, name: str = "conclab-inbox") -> None:
        self._read, self.fd = os.pipe()
        self.cap = cap
        self.overflowed = False  # the child sent more than `cap` bytes (the rest was not read)
        self.data = bytearray()  # what was sent, unless `take` is given each chunk instead
        self._take = take or self.data.extend
        self._handed = False
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read_all, name=name, daemon=True)
        self._reader.start()

    def handed_over(self) -> None:
        """The child has started with its end of the pipe: ours is closed."""
        if not self._handed:
            self._handed = True
            os.close(self.fd)

    def _read_all(self) -> None:
        total = 0
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([self._read], [], [], 0.1)
                if not ready:
                    continue
                chunk = os.read(self._read, 65536)
                if not chunk:
                    break
                total += len(chunk)
                if total > self.cap:
                    self.overflowed = True
                    break
                self._take(chunk)
        finally:
            os.close(self._read)

    def close(self, grace: float = 1.0, done: Callable[[], bool] = lambda: False) -> None:
        """Once the child has ended: wait up to `grace` seconds for the pipe to end (or for
        `done()`), then stop reading."""
        self.handed_over()
        deadline = time.monotonic() + grace
        while self._reader.is_alive() and time.monotonic() < deadline and not done():
            self._reader.join(0.05)
        self._stop.set()
        self._reader.join(1.0)
