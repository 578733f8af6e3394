"""Functions for child processes that graders start through student code.

A child process gets its target by name, so targets must live in an importable module
(not in a test file, which spawn and forkserver children cannot import): here.
"""

from __future__ import annotations

import os
import sys
import time


def sleep_for(seconds: float) -> None:
    time.sleep(seconds)


def exit_with(code: int) -> None:
    sys.exit(code)


def fail() -> None:
    raise RuntimeError("this target fails on purpose")


def square(x: int) -> int:
    return x * x


#: Calls of counted_square made in each process.  A worker process counts in its own copy of
#: this module; only calls made by threads of the process that asks show up in its count.
counted_calls: dict[int, int] = {}


def counted_square(x: int) -> int:
    pid = os.getpid()
    counted_calls[pid] = counted_calls.get(pid, 0) + 1
    return x * x


def stamp(value: object, seconds: float = 0.0, error: str = "", wait_for: str = "", touch: str = "") -> tuple:
    """A task that says when and where it ran: waits until the file `wait_for` exists
    (at most 5 s), sleeps `seconds`, creates the file `touch`, then returns
    (value, pid, start, end) on the time.perf_counter clock, or raises ValueError(error)."""
    start = time.perf_counter()
    deadline = start + 5.0
    while wait_for and not os.path.exists(wait_for) and time.perf_counter() < deadline:
        time.sleep(0.005)
    time.sleep(seconds)
    if touch:
        open(touch, "w").close()
    if error:
        raise ValueError(error)
    return value, os.getpid(), start, time.perf_counter()


def stamp_one(args: tuple) -> tuple:
    """stamp(*args), for map-like functions that pass one item."""
    return stamp(*args)


class ProgressFile:
    """A picklable on_progress(done, total) callback that appends "pid done total time"
    to a file from whichever process calls it, so the caller of a pool function can see
    calls made in worker processes too."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, done: int, total: int) -> None:
        with open(self.path, "a") as f:
            f.write(f"{os.getpid()} {done} {total} {time.perf_counter()!r}\n")

    def calls(self) -> list[tuple[int, int, int, float]]:
        """Every call so far, as (pid, done, total, time)."""
        if not os.path.exists(self.path):
            return []
        with open(self.path) as f:
            rows = [line.split() for line in f if line.strip()]
        return [(int(pid), int(done), int(total), float(when)) for pid, done, total, when in rows]


def burn(n: int) -> int:
    """CPU-bound work of size n: sum(i * i for i in range(n)), in plain Python."""
    return sum(i * i for i in range(n))


class ComputedHere(RuntimeError):
    """Work meant for a worker process ran in the process that handed it out."""


class BurnElsewhere:
    """burn(n) for a worker process: called in the process that made it (by one of its
    threads, or with no worker at all), it raises ComputedHere at once instead of computing."""

    def __init__(self) -> None:
        self.home = os.getpid()

    def __call__(self, n: int) -> int:
        if os.getpid() == self.home:
            raise ComputedHere("burn was called in the calling process, not in a worker process")
        return burn(n)
