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
    # TODO: this computes every chunk here, in the calling process. Hand the chunks to a
    #       multiprocessing.Pool of `processes` workers with pool.map and add up the results.
    return sum(map(_sum_squares_of, _chunks(n, 4 * processes)))


def apply_all(func: Callable[..., Any], args_list: Iterable[Sequence[Any]], processes: int = 2) -> list:
    """[func(*args) for args in args_list], computed in `processes` worker processes.

    Every task is submitted (apply_async returns at once) before any result is awaited,
    so the workers compute while the parent waits; get() re-raises a task's exception,
    and the first one in args_list order reaches the caller."""
    # TODO: one pool.apply_async(func, args) per args tuple, kept in a list; only then get()
    #       each result. Calling .get() right after apply_async would wait for that task
    #       before the next one is even submitted: the workers would take turns.
    raise NotImplementedError("apply_all")


def map_with_progress(func: Callable[[Any], Any], items: Iterable[Any], processes: int = 2,
                      on_progress: Callable[[int, int], Any] | None = None) -> list:
    """[func(item) for item in items] in `processes` worker processes, calling
    on_progress(done, total) here, in the parent, each time a result has arrived."""
    items = list(items)
    # TODO: nothing ever closes this pool, so its worker processes stay behind. Use
    #       `with multiprocessing.Pool(processes) as pool:`.
    pool = multiprocessing.Pool(processes)
    # TODO: pool.map returns once every result is there, so all the progress comes at the
    #       end. Iterate over pool.imap(func, items) instead: it hands over each result in turn.
    results = pool.map(func, items)
    for done in range(1, len(results) + 1):
        if on_progress is not None:
            on_progress(done, len(items))
    return results
