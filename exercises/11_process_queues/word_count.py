"""Topic 11: process queues. Worker processes fed by one queue, answering on another."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from collections.abc import Sequence
from typing import Any

_STOP = None  # the sentinel: texts are strings, so None cannot be one


def _count_words(tasks: Any, results: Any) -> None:
    while True:
        text = tasks.get()
        if text is _STOP:
            break
        results.put(Counter(text.lower().split()))


def word_count(texts: Sequence[str], workers: int = 2) -> dict[str, int]:
    """How often each word (lower-cased, split on white space) occurs in the texts,
    counted by `workers` processes: they take texts from a task queue and put one partial
    count per text on a result queue; the parent merges them."""
    tasks, results = multiprocessing.Queue(), multiprocessing.Queue()
    processes = [multiprocessing.Process(target=_count_words, args=(tasks, results)) for _ in range(workers)]
    for process in processes:
        process.start()
    for text in texts:
        tasks.put(text)
    # TODO: one sentinel stops one worker; the others wait for ever.
    tasks.put(_STOP)
    # TODO: a worker cannot exit while its results are still waiting in the pipe, so
    #       joining first deadlocks once the results are large. Drain the results first.
    for process in processes:
        process.join()
    total: Counter = Counter()
    for _ in range(len(texts)):
        total.update(results.get())
    return dict(total)
