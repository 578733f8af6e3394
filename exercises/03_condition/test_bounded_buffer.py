"""Public tests for topic 03. Run them with:  pytest exercises/03_condition

The hidden graders add many producers and consumers at once, timeouts, close() with
threads waiting, and a check that waiting threads really sleep instead of polling.
"""

import pytest

from conclab.testing import blocks, call, expect, raises


def test_fifo(bounded_buffer):
    buf = bounded_buffer.BoundedBuffer(3)
    for item in (1, 2, 3):
        call(buf.put, item)
    got = [call(buf.get) for _ in range(3)]
    expect(got == [1, 2, 3], f"Put 1, 2, 3 and got back {got}: get must return the oldest item first.")


def test_get_waits_for_an_item(bounded_buffer):
    buf = bounded_buffer.BoundedBuffer(1)
    waiting = blocks(buf.get, what="get() on an empty buffer")
    call(buf.put, "hello")
    expect(waiting.result() == "hello", "The waiting get() should return the item that was put.")


def test_put_waits_for_room(bounded_buffer):
    buf = bounded_buffer.BoundedBuffer(1)
    call(buf.put, 1)
    waiting = blocks(buf.put, 2, what="put(2) on a full buffer")
    expect(call(buf.get) == 1, "get() should return 1.")
    waiting.result()


def test_get_timeout(bounded_buffer):
    buf = bounded_buffer.BoundedBuffer(1)
    with raises(TimeoutError, "get(timeout=0.2) on an empty buffer should raise TimeoutError"):
        call(buf.get, timeout=0.2)


def test_close(bounded_buffer):
    buf = bounded_buffer.BoundedBuffer(2)
    call(buf.put, "last")
    call(buf.close)
    expect(call(buf.get) == "last", "Items already in the buffer still come out after close().")
    with raises(bounded_buffer.Closed, "get() on a closed, empty buffer should raise Closed"):
        call(buf.get)
