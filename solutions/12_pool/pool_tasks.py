"""Topic 12: pools. A fixed team of worker processes, and the tasks handed to it."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Sequence
from typing import Any


def _chunks(n: int, pieces: int) -> list[range]:
    """range(n) cut into about `pieces` consecutive ranges of nearly equal length."""
    step = max(1, -(-n // max(1, pieces)))
    return [range(start, min(start + step, n)) for start in range(0, n, step)]


def _sum_squares_of(numbers: range) -> int:
    return sum(i * i for i in numbers)


def sum_of_squares(n: int, processes: int = 2) -> int:
    """sum(i * i for i in range(n)), the chunks computed in `processes` worker processes.

    A few chunks per process keep every process busy until the end, and each task is one
    small range object to send, not millions of numbers."""
    with multiprocessing.Pool(processes) as pool:
        return sum(pool.map(_sum_squares_of, _chunks(n, 4 * processes)))


def apply_all(func: Callable[..., Any], args_list: Iterable[Sequence[Any]], processes: int = 2) -> list:
    """[func(*args) for args in args_list], computed in `processes` worker processes.

    Every task is submitted (apply_async returns at once) before any result is awaited,
    so the workers compute while the parent waits; get() re-raises a task's exception,
    and the first one in args_list order reaches the caller."""
    with multiprocessing.Pool(processes) as pool:
        pending = [pool.apply_async(func, tuple(args)) for args in args_list]
        return [result.get() for result in pending]


def map_with_progress(func: Callable[[Any], Any], items: Iterable[Any], processes: int = 2,
                      on_progress: Callable[[int, int], Any] | None = None) -> list:
    """[func(item) for item in items] in `processes` worker processes, calling
    on_progress(done, total) here, in the parent, each time a result has arrived."""
    items = list(items)
    results = []
    with multiprocessing.Pool(processes) as pool:
        for done, result in enumerate(pool.imap(func, items), start=1):  # in order, one by one
            results.append(result)
            if on_progress is not None:
                on_progress(done, len(items))
    return results
