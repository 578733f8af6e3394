"""Topic 06: queues. A multi-stage pipeline of worker threads linked by bounded queues,
and a pool of worker threads fed by one queue."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

_STOP = object()  # the sentinel: "no more work, stop"


def run_pipeline(items: Iterable[Any], stages: Sequence[Callable[[Any], Any]], workers: int = 2,
                 maxsize: int = 8) -> list:
    """Pass every item through all stages in order.  Each stage runs in `workers`
    threads; stage k reads from queue k and writes to queue k + 1, all of them
    queue.Queue(maxsize).  Returns one output per input, in input order.  If a stage
    raises, the first exception is re-raised once every thread has stopped."""
    items = list(items)
    queues = [queue.Queue(maxsize) for _ in range(len(stages) + 1)]
    lock = threading.Lock()
    errors: list[BaseException] = []
    running = [workers] * len(stages)  # workers still running, per stage

    def worker(k: int) -> None:
        inbox, outbox = queues[k], queues[k + 1]
        while True:
            message = inbox.get()
            if message is _STOP:
                break
            index, item = message
            if errors:
                continue  # something failed: drain, so that nobody blocks on a full queue
            try:
                outbox.put((index, stages[k](item)))
            except BaseException as exc:
                with lock:
                    errors.append(exc)
        with lock:
            running[k] -= 1
            last = running[k] == 0
        if last:  # the stage is done: stop the next one (the collector needs one sentinel)
            for _ in range(workers if k + 1 < len(stages) else 1):
                outbox.put(_STOP)

    def feed() -> None:
        for index, item in enumerate(items):
            if errors:
                break
            queues[0].put((index, item))
        for _ in range(workers if stages else 1):
            queues[0].put(_STOP)

    threads = [threading.Thread(target=feed)]
    threads += [threading.Thread(target=worker, args=(k,)) for k in range(len(stages)) for _ in range(workers)]
    for thread in threads:
        thread.start()
    results: list[Any] = [None] * len(items)
    while (message := queues[-1].get()) is not _STOP:
        index, result = message
        results[index] = result
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


class TaskRunner:
    """`workers` threads that run the tasks submitted to one queue."""

    def __init__(self, workers: int):
        self._tasks: queue.Queue = queue.Queue()
        self.errors: list[BaseException] = []
        self._threads = [threading.Thread(target=self._work, daemon=True) for _ in range(workers)]
        self._shut = False
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        while True:
            task = self._tasks.get()
            try:
                if task is _STOP:
                    return
                func, args = task
                func(*args)
            except Exception as exc:  # a failing task must not kill its worker
                self.errors.append(exc)
            finally:
                self._tasks.task_done()

    def submit(self, func: Callable[..., Any], *args: Any) -> None:
        """Queue func(*args) to run on one of the workers."""
        self._tasks.put((func, args))

    def join(self) -> None:
        """Return once every task submitted so far has finished."""
        self._tasks.join()

    def shutdown(self) -> None:
        """Let the workers finish the queued tasks, stop them and join them; idempotent."""
        if self._shut:
            return
        self._shut = True
        for _ in self._threads:
            self._tasks.put(_STOP)
        for thread in self._threads:
            thread.join()
