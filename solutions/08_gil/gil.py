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
    urls = list(urls)
    todo: queue.Queue = queue.Queue()
    for index in range(len(urls)):
        todo.put(index)
    results: list[Any] = [None] * len(urls)
    errors: list[BaseException | None] = [None] * len(urls)

    def worker() -> None:
        while True:
            try:
                index = todo.get_nowait()
            except queue.Empty:
                return
            try:
                results[index] = fetch(urls[index])
            except BaseException as exc:
                errors[index] = exc

    threads = [threading.Thread(target=worker) for _ in range(min(workers, len(urls)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for error in errors:
        if error is not None:
            raise error
    return results


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
    with multiprocessing.Pool(processes=workers) as pool:
        return pool.map(count_below, limits, chunksize=1)


def classify(func: Callable[[], Any]) -> str:
    """Run func() once in this thread: "cpu" if this thread's CPU time was at least half
    of the wall time, else "io" (it spent most of the time waiting)."""
    wall_start, cpu_start = time.perf_counter(), time.thread_time()
    func()
    wall, cpu = time.perf_counter() - wall_start, time.thread_time() - cpu_start
    return "cpu" if cpu >= wall / 2 else "io"
