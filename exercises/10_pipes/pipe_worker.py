"""Topic 10: pipes. A child process that serves a parent over a Pipe, and a parent that
listens to several producers at once."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Iterable
from multiprocessing.connection import wait
from typing import Any


def _serve(func: Callable[[Any], Any], conn: Any, parent_end: Any) -> None:
    # TODO: under fork, this process has a copy of the parent's end too. While any copy of
    #       it is open, recv() here never raises EOFError. Close the ends you do not use.
    while True:
        try:
            item = conn.recv()
        except EOFError:  # the parent closed its end: no more work
            break
        conn.send(func(item))
    conn.close()


def pipe_map(func: Callable[[Any], Any], items: Iterable[Any]) -> list:
    """func(item) for every item, computed in ONE child process linked by a Pipe.  The
    parent sends each item and receives the result; when it has sent everything it closes
    its end, the child sees EOFError and exits.  Returns after the child has exited.  If the
    child dies, or func raises in it, raises an exception instead of waiting for ever."""
    parent_end, child_end = multiprocessing.Pipe()
    child = multiprocessing.Process(target=_serve, args=(func, child_end, parent_end))
    child.start()
    # TODO: close the parent's copy of the child's end.
    results = []
    for item in items:
        parent_end.send(item)
        results.append(parent_end.recv())
    parent_end.close()
    child.join()  # hangs while the child waits for an EOF that never comes
    return results


def _produce(p: int, count: int, conn: Any) -> None:
    for i in range(count):
        conn.send(p * 1000 + i)
    conn.close()


def gather(n_producers: int, count: int, timeout: float) -> list[int]:
    """Start n_producers processes, each with its own Pipe; producer p sends p * 1000 + i
    for i < count.  Receive from all of them as data arrives, and return every number
    received, sorted, once every pipe is at EOF or `timeout` seconds have passed.  A producer
    that dies or stops sending must not hang it: leave no producer running."""
    # TODO: reading one producer after the other with a blocking recv() hangs on a
    #       producer that stops sending. Use multiprocessing.connection.wait(readers,
    #       timeout) to read whichever pipe has data, until every pipe is at EOF or the
    #       time is up; close the write ends you do not use; join (or terminate) the producers.
    readers = []
    for p in range(n_producers):
        reader, writer = multiprocessing.Pipe(duplex=False)
        multiprocessing.Process(target=_produce, args=(p, count, writer)).start()
        readers.append(reader)
    received = []
    for reader in readers:
        while True:
            try:
                received.append(reader.recv())
            except EOFError:
                break
    return sorted(received)
