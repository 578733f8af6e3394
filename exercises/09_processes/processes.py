"""Topic 09: processes. The same API as threads, but no shared memory."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from typing import Any

counter = 0


def _add_ones(increments: int) -> None:
    global counter
    for _ in range(increments):
        counter += 1


def count_in_processes(n_processes: int, increments: int) -> int:
    """n_processes processes each add 1 to one shared multiprocessing.Value, `increments`
    times; returns the final value, n_processes * increments."""
    # TODO: each process has its own copy of the global `counter`, so the parent's stays 0.
    #       Share a multiprocessing.Value instead, pass it to the processes, and take its
    #       lock (get_lock()) around each += 1.
    processes = [multiprocessing.Process(target=_add_ones, args=(increments,)) for _ in range(n_processes)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    return counter


def run_with_timeout(target: Callable[..., Any], args: tuple = (), timeout: float = 1.0) -> int | None:
    """Run target(*args) in a child process and return its exit code; if it is still
    running after `timeout` seconds, terminate it, reap it and return None."""
    # TODO: start a Process, join it with the timeout; if it is still alive, terminate()
    #       it and join() it again (a process that was never joined stays a zombie).
    raise NotImplementedError("run_with_timeout")


class SquareProcess(multiprocessing.Process):
    """A process that computes n * n and puts (n, n * n) on the `results` queue: an
    attribute set in the child would stay in the child's copy of the object."""

    def __init__(self, n: int, results: Any):
        super().__init__()
        self.n = n
        self.results = results
        self.result: int | None = None

    def run(self) -> None:
        # TODO: this sets the attribute in the child's copy of the object; the parent
        #       never sees it. Put (n, n * n) on self.results instead.
        self.result = self.n * self.n
