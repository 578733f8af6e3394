"""Functions for child processes that graders start through student code.

A child process gets its target by name, so targets must live in an importable module
(not in a test file, which spawn and forkserver children cannot import): here.
"""

from __future__ import annotations

import os
import signal
import sys
import time


def sleep_for(seconds: float) -> None:
    time.sleep(seconds)


def exit_with(code: int) -> None:
    sys.exit(code)


def fail() -> None:
    raise RuntimeError("this target fails on purpose")


def ignore_sigterm_and_sleep(seconds: float) -> None:
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(seconds)


def write_pid(path: str) -> None:
    with open(path, "w") as f:
        f.write(str(os.getpid()))


def square(x: int) -> int:
    return x * x
