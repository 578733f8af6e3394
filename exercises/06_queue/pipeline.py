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
    # TODO: one queue.Queue(maxsize) between each pair of stages (and before the first).
    # TODO: a feeder thread puts (index, item) pairs into the first queue; `workers`
    #       threads per stage move them along; this thread collects the last queue.
    # TODO: stop each stage with one _STOP per worker; join every thread; re-raise.
    raise NotImplementedError("run_pipeline")


class TaskRunner:
    """`workers` threads that run the tasks submitted to one queue."""

    def __init__(self, workers: int):
        # TODO: a queue.Queue of tasks, self.errors = [], and `workers` started threads
        #       that take tasks from the queue and run them.
        raise NotImplementedError("TaskRunner")

    def submit(self, func: Callable[..., Any], *args: Any) -> None:
        """Queue func(*args) to run on one of the workers."""
        raise NotImplementedError("TaskRunner.submit")

    def join(self) -> None:
        """Return once every task submitted so far has finished."""
        # TODO: Queue.join(); it only returns if every task was marked task_done(),
        #       also the ones that raised.
        raise NotImplementedError("TaskRunner.join")

    def shutdown(self) -> None:
        """Let the workers finish the queued tasks, stop them and join them; idempotent."""
        # TODO: one _STOP per worker, then join them; a second call does nothing.
        raise NotImplementedError("TaskRunner.shutdown")
