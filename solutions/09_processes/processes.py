"""Topic 09: processes. The same API as threads, but no shared memory."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from typing import Any


def _add_ones(counter: Any, increments: int) -> None:
    for _ in range(increments):
        with counter.get_lock():  # += on a shared Value is read, add, write: lock it
            counter.value += 1


def count_in_processes(n_processes: int, increments: int) -> int:
    """n_processes processes each add 1 to one shared multiprocessing.Value, `increments`
    times; returns the final value, n_processes * increments."""
    counter = multiprocessing.Value("i", 0)
    processes = [multiprocessing.Process(target=_add_ones, args=(counter, increments)) for _ in range(n_processes)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    return counter.value


def run_with_timeout(target: Callable[..., Any], args: tuple = (), timeout: float = 1.0) -> int | None:
    """Run target(*args) in a child process and return its exit code; if it is still
    running after `timeout` seconds, terminate it, reap it and return None."""
    process = multiprocessing.Process(target=target, args=args)
    process.start()
    process.join(timeout)
    if process.is_alive():
        process.terminate()
        process.join(1.0)
        if process.is_alive():  # it ignored SIGTERM
            process.kill()
            process.join()
        return None
    return process.exitcode


class SquareProcess(multiprocessing.Process):
    """A process that computes n * n and puts (n, n * n) on the `results` queue: an
    attribute set in the child would stay in the child's copy of the object."""

    def __init__(self, n: int, results: Any):
        super().__init__()
        self.n = n
        self.results = results

    def run(self) -> None:
        self.results.put((self.n, self.n * self.n))
