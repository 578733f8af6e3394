"""Public tests for topic 03. Run them with:  pytest exercises/03_condition

The hidden graders add many producers and consumers at once, timeouts, close() with
threads waiting, and a check that waiting threads really sleep instead of polling.
"""

import pytest

from conclab.kit.vocabulary import wake_in_vain
from conclab.testing import blocks, call, expect, raises, shown


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


# Without forced switches: the test's put-then-get (or get-then-put) must run back to back.
@pytest.mark.no_chaos
def test_a_woken_get_waits_again_when_the_item_is_gone(bounded_buffer):
    buf = bounded_buffer.BoundedBuffer(1)

    def put_and_take_back():
        buf.put("taken back")  # wakes the waiting get()...
        try:
            buf.get(timeout=0.05)  # ...but this thread takes the item first
            return True
        except TimeoutError:
            return False  # the waiting get() was quicker: try again

    waiter, ended = wake_in_vain(buf.get, put_and_take_back, lambda: buf.put("yours"), "get()", settle=0.1)
    outcome = f"raised {shown(waiter.error)}" if waiter.error else f"returned {shown(waiter.value)}"
    expect(
        not ended,
        "A put() woke up a waiting get(), but another thread took the item before the woken get() ran. "
        f"The buffer was empty again, yet the woken get() {outcome}"
        f"{' (nobody had closed the buffer)' if isinstance(waiter.error, bounded_buffer.Closed) else ''} "
        "instead of waiting again. "
        "After wait() returns, check again whether there is an item: wait in a `while` loop, not an `if`.",
    )
    expect(waiter.error is None and waiter.value == "yours", f"The waiting get() {outcome}; expected 'yours'.")


@pytest.mark.no_chaos
def test_a_woken_put_waits_again_when_the_room_is_gone(bounded_buffer):
    buf = bounded_buffer.BoundedBuffer(1)
    call(buf.put, "first")

    def take_and_fill_again():
        buf.get()  # makes room and wakes the waiting put()...
        try:
            buf.put("refill", timeout=0.05)  # ...but this thread fills the room first
            return True
        except TimeoutError:
            return False  # the waiting put() was quicker: try again

    waiter, ended = wake_in_vain(lambda: buf.put("waiting"), take_and_fill_again, buf.get, "put('waiting')", settle=0.1)
    expect(
        not ended,
        "A get() woke up a waiting put(), but another thread filled the room before the woken put() ran. "
        f"The buffer was full again, yet the woken put() {'raised ' + shown(waiter.error) if waiter.error else 'went on'}"
        f" (the buffer of capacity 1 now holds {call(len, buf)} items) instead of waiting again. After wait() returns, "
        "check again whether there is room: wait in a `while` loop, not an `if`.",
    )
    expect(waiter.error is None, f"The waiting put() raised {shown(waiter.error)}.")
