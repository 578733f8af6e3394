"""Topic 10: pipes. A child process that serves a parent over a Pipe, and a parent that
listens to several producers at once."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Iterable
from multiprocessing.connection import wait
from typing import Any


def _serve(func: Callable[[Any], Any], conn: Any, parent_end: Any) -> None:
    parent_end.close()  # the parent's end, inherited under fork: close it, or EOF never comes
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
    child_end.close()  # the child's end belongs to the child now
    results = []
    try:
        for item in items:
            parent_end.send(item)
            results.append(parent_end.recv())
    finally:
        parent_end.close()
        child.join()
    if child.exitcode != 0:
        raise RuntimeError(f"the child process exited with code {child.exitcode}")
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
    deadline = time.monotonic() + timeout
    readers, producers = {}, []  # readers: each pipe not at EOF yet, and its producer
    for p in range(n_producers):
        reader, writer = multiprocessing.Pipe(duplex=False)
        process = multiprocessing.Process(target=_produce, args=(p, count, writer))
        process.start()
        writer.close()  # only the producer writes: our copy would keep the pipe from EOF
        readers[reader] = process
        producers.append(process)
    received = []
    try:
        while readers:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            for conn in wait(list(readers), timeout=remaining):
                try:
                    received.append(conn.recv())
                except EOFError:  # that producer has finished (or died)
                    del readers[conn]
                    conn.close()
    finally:
        for conn, process in readers.items():  # not at EOF when the time was up: stuck, or slow
            conn.close()
            process.terminate()
        for process in producers:
            process.join()
    return sorted(received)
