"""Topic 08: the GIL. Threads for waiting (I/O bound), processes for computing (CPU bound)."""

from __future__ import annotations

import math
import multiprocessing
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any


def fetch_all(urls: Iterable[str], fetch: Callable[[str], Any], workers: int = 8) -> list:
    """fetch(url) for every url, up to `workers` at once in threads; results in input order.

    Fetching is I/O bound: a thread waiting for the network lets go of the GIL, so
    threads overlap their waiting even though only one runs Python code at a time."""
    # TODO: this fetches one url after the other. Use up to `workers` threads at once
    #       (never more), and keep the results in input order.
    return [fetch(url) for url in urls]


def count_below(limit: int) -> int:
    """The number of primes below `limit`, by trial division: plain CPU-bound Python."""
    count = 0
    for n in range(2, limit):
        if all(n % d for d in range(2, math.isqrt(n) + 1)):
            count += 1
    return count


def count_primes(limits: Sequence[int], workers: int = 2) -> list[int]:
    """For each limit, the number of primes below it, computed in `workers` processes.

    Each process has its own interpreter and its own GIL, so they really compute at the
    same time on several cores.  count_below is a module-level function, so the worker
    processes can import it under every start method (fork, forkserver, spawn)."""
    # TODO: this runs in one process. Compute the limits in a multiprocessing.Pool of
    #       `workers` processes instead.
    return [count_below(limit) for limit in limits]


def classify(func: Callable[[], Any]) -> str:
    """Run func() once in this thread: "cpu" if this thread's CPU time was at least half
    of the wall time, else "io" (it spent most of the time waiting)."""
    # TODO: measure wall time (time.perf_counter) and this thread's CPU time
    #       (time.thread_time) around func().
    raise NotImplementedError("classify")
