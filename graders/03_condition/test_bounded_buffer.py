"""Graders for topic 03: bounded_buffer.py."""

import threading
from collections import Counter
from time import monotonic

import pytest

from conclab.kit.vocabulary import wake_in_vain, woken_in_vain_until_the_timeout
from conclab.testing import (
    BLOCK,
    EventLog,
    blocks,
    call,
    expect,
    fail,
    lines_run_while,
    raises,
    run_threads,
    shown,
    start,
    uses_module,
)


@pytest.mark.parametrize("capacity", [0, -3])
def test_capacity_below_one_is_refused(bounded_buffer, capacity):
    with raises(ValueError, f"BoundedBuffer({capacity}) should raise ValueError (the capacity must be at least 1)"):
        bounded_buffer.BoundedBuffer(capacity)


def test_items_come_out_in_fifo_order(bounded_buffer):
    expect(
        not uses_module(bounded_buffer, "queue"),
        "bounded_buffer.py imports the queue module: build the buffer yourself, on threading.Condition.",
    )
    buf = bounded_buffer.BoundedBuffer(5)
    for item in "abcde":
        call(buf.put, item)
    expect(call(len, buf) == 5, f"After 5 puts len(buf) should be 5, it is {len(buf)}.")
    got = [call(buf.get) for _ in range(5)]
    expect(
        got == list("abcde"),
        f"Items put as a, b, c, d, e came out as {', '.join(map(str, got))}: "
        "get must return the oldest item first (FIFO).",
    )
    expect(call(len, buf) == 0, f"After taking everything out len(buf) should be 0, it is {len(buf)}.")


def test_put_waits_while_the_buffer_is_full(bounded_buffer):
    buf = bounded_buffer.BoundedBuffer(2)
    call(buf.put, 1)
    call(buf.put, 2)
    third = blocks(buf.put, 3, what="put(3) on a full buffer of capacity 2")
    expect(call(len, buf) == 2, f"The buffer holds at most 2 items, but len(buf) is {len(buf)}.")
    expect(call(buf.get) == 1, "The first get should return 1.")
    third.result()
    expect([call(buf.get), call(buf.get)] == [2, 3], "After the waiting put(3) went in, the buffer should hold 2, 3.")


def test_get_waits_while_the_buffer_is_empty(bounded_buffer):
    buf = bounded_buffer.BoundedBuffer(3)
    waiting = blocks(buf.get, what="get() on an empty buffer")
    call(buf.put, "x")
    expect(waiting.result() == "x", f"The waiting get() should return 'x', it returned {shown(waiting.value)}.")


def test_get_timeout(bounded_buffer):
    buf = bounded_buffer.BoundedBuffer(1)
    job = start(buf.get, timeout=0.4, what="get(timeout=0.4) on an empty buffer")
    job.finished()
    expect(
        isinstance(job.error, TimeoutError),
        f"get(timeout=0.4) on an empty buffer should raise TimeoutError, but it "
        f"{'raised ' + shown(job.error) if job.error else 'returned ' + shown(job.value)}.",
    )
    expect(job.duration >= 0.35, f"get(timeout=0.4) gave up after {job.duration:.2f} s, before its timeout.")


def test_put_timeout(bounded_buffer):
    buf = bounded_buffer.BoundedBuffer(1)
    call(buf.put, "a")
    job = start(buf.put, "b", timeout=0.4, what="put('b', timeout=0.4) on a full buffer")
    job.finished()
    expect(
        isinstance(job.error, TimeoutError),
        f"put(timeout=0.4) on a full buffer should raise TimeoutError, but it "
        f"{'raised ' + shown(job.error) if job.error else 'returned'}.",
    )
    expect(job.duration >= 0.35, f"put(timeout=0.4) gave up after {job.duration:.2f} s, before its timeout.")
    expect(call(len, buf) == 1, "A put that timed out must not add its item.")


def outcome(job):
    return f"raised {shown(job.error)}" if job.error else f"returned {shown(job.value)}"


# Without forced switches: the grader's put-then-get (or get-then-put) must run back to back,
# so that the woken call really finds the item (or the room) gone.
@pytest.mark.no_chaos
def test_a_woken_get_that_finds_no_item_waits_again(bounded_buffer):
    buf = bounded_buffer.BoundedBuffer(2)

    def put_and_take_back():
        buf.put("taken back")  # wakes the waiting get()...
        try:
            buf.get(timeout=0.05)  # ...but this thread takes the item first
            return True
        except TimeoutError:
            return False  # the waiting get() was quicker: nothing proved, try again

    waiter, ended = wake_in_vain(buf.get, put_and_take_back, lambda: buf.put("yours"), "get() on an empty buffer")
    closed = isinstance(waiter.error, bounded_buffer.Closed)
    expect(
        not ended,
        "A put() woke up a waiting get(), but another thread took the item before the woken get() ran. The buffer "
        f"was empty again, yet the woken get() {outcome(waiter)}{' (nobody had closed the buffer)' if closed else ''} "
        "instead of waiting again. After wait() returns, check again whether there is an item: wait in a `while` "
        "loop, not an `if`.",
    )
    expect(
        waiter.error is None and waiter.value == "yours",
        f"The waiting get() {outcome(waiter)}; it should have returned 'yours', the next item put.",
    )
    expect(call(len, buf) == 0, f"Every item was taken out, but len(buf) is {len(buf)}.")


@pytest.mark.no_chaos
def test_a_woken_put_that_finds_no_room_waits_again(bounded_buffer):
    buf = bounded_buffer.BoundedBuffer(1)
    call(buf.put, "first")
    taken = []

    def take_and_fill_again():
        taken.append(buf.get())  # makes room and wakes the waiting put()...
        try:
            buf.put("refill", timeout=0.05)  # ...but this thread fills the room first
            return True
        except TimeoutError:
            return False  # the waiting put() was quicker: nothing proved, try again

    waiter, ended = wake_in_vain(
        lambda: buf.put("waiting"), take_and_fill_again, lambda: taken.append(buf.get()), "put() on a full buffer"
    )
    expect(
        not ended,
        "A get() woke up a waiting put(), but another thread filled the room before the woken put() ran. The "
        f"buffer was full again, yet the woken put() {'raised ' + shown(waiter.error) if waiter.error else 'went on'} "
        f"(the buffer of capacity 1 then held {call(len, buf)} items) instead of waiting again. After wait() returns, "
        "check again whether there is room: wait in a `while` loop, not an `if`.",
    )
    expect(waiter.error is None, f"The waiting put() raised {shown(waiter.error)}.")
    expect(
        call(len, buf) == 1 and call(buf.get) == "waiting",
        "Once there was room for good, the waiting put() should have put its item in the buffer.",
    )


def _timeout_while_woken_in_vain(job, wakes, what, room):
    """The verdict on a timed put or get (timeout=1.0) that was woken in vain `wakes` times."""
    __tracebackhide__ = True
    if job.running:
        fail(
            f"{what} was still waiting {job.duration or monotonic() - job.started_at:.1f} s after it was called, "
            f"4 times its timeout. It had been woken {wakes} times, and each time another thread took the {room} "
            "before it ran. After such a wake-up it must go on waiting only for the time that is left of its timeout, "
            "not start the whole timeout again: compute a deadline once (time.monotonic() + timeout) and pass the "
            "time that remains to wait()."
        )
    expect(
        job.error is None or isinstance(job.error, TimeoutError),
        f"{what} {outcome(job)}; expected it to succeed or raise TimeoutError.",
    )
    if isinstance(job.error, TimeoutError):
        expect(
            job.duration >= 0.95,
            f"{what} gave up after {job.duration:.2f} s, before its timeout. It was woken up, but another thread had "
            f"taken the {room} first; then it should keep waiting for the time that is left (a while loop around "
            "wait(), with a deadline), not give up.",
        )


@pytest.mark.no_chaos
def test_put_timeout_counts_from_the_call_not_from_each_wakeup(bounded_buffer):
    buf = bounded_buffer.BoundedBuffer(1)
    call(buf.put, "a")

    def make_room_and_take_it_back():
        buf.get()  # wakes the waiting put...
        try:
            buf.put("a", timeout=0.05)  # ...but this thread takes the room back first
            return True
        except TimeoutError:
            return False  # the waiting put was quicker

    try:
        job, wakes = woken_in_vain_until_the_timeout(
            lambda: start(buf.put, "b", timeout=1.0, what="put('b', timeout=1.0) on a full buffer"),
            make_room_and_take_it_back,
            within=4.0,
        )
        _timeout_while_woken_in_vain(job, wakes, "put('b', timeout=1.0)", "room")
    finally:
        call(buf.close)


@pytest.mark.no_chaos
def test_get_timeout_counts_from_the_call_not_from_each_wakeup(bounded_buffer):
    buf = bounded_buffer.BoundedBuffer(1)

    def put_and_take_back():
        buf.put("x")  # wakes the waiting get...
        try:
            buf.get(timeout=0.05)  # ...but this thread takes the item back first
            return True
        except TimeoutError:
            return False  # the waiting get was quicker

    try:
        job, wakes = woken_in_vain_until_the_timeout(
            lambda: start(buf.get, timeout=1.0, what="get(timeout=1.0) on an empty buffer"),
            put_and_take_back,
            within=4.0,
        )
        _timeout_while_woken_in_vain(job, wakes, "get(timeout=1.0)", "item")
    finally:
        call(buf.close)


def test_close_wakes_a_waiting_get_and_a_waiting_put(bounded_buffer):
    empty = bounded_buffer.BoundedBuffer(1)
    getter = blocks(empty.get, what="get() on an empty buffer")
    full = bounded_buffer.BoundedBuffer(1)
    call(full.put, 1)
    putter = blocks(full.put, 2, what="put(2) on a full buffer")
    call(empty.close)
    call(full.close)
    for job in (getter, putter):
        job.finished()
        expect(
            isinstance(job.error, bounded_buffer.Closed),
            f"{job.what} was waiting when close() was called: it should raise Closed, but it "
            f"{'raised ' + shown(job.error) if job.error else 'returned ' + shown(job.value)}.",
        )


def test_close_wakes_every_waiter(bounded_buffer):
    buf = bounded_buffer.BoundedBuffer(2)
    getters = [start(buf.get, what=f"get() #{i}") for i in range(5)]
    threading.Event().wait(BLOCK)
    call(buf.close)
    for job in getters:
        job.finished()
    woken = [job for job in getters if isinstance(job.error, bounded_buffer.Closed)]
    expect(
        len(woken) == 5,
        f"5 threads were waiting in get() when close() was called; {len(woken)} of them "
        "raised Closed. close() must wake them all (notify_all).",
    )


def test_closed_buffer_refuses_puts_and_drains_before_closed(bounded_buffer):
    buf = bounded_buffer.BoundedBuffer(3)
    call(buf.put, 1)
    call(buf.put, 2)
    call(buf.close)
    call(buf.close)  # idempotent
    with raises(bounded_buffer.Closed, "put() on a closed buffer should raise Closed"):
        call(buf.put, 3)
    expect([call(buf.get), call(buf.get)] == [1, 2], "Items already in a closed buffer must still come out.")
    with raises(bounded_buffer.Closed, "get() on a closed buffer, once it is empty, should raise Closed"):
        call(buf.get)
    with raises(bounded_buffer.Closed, "get(timeout=0.1) on a closed, empty buffer should raise Closed, not wait"):
        call(buf.get, timeout=0.1)


def test_waiting_threads_use_no_cpu(bounded_buffer):
    empty = bounded_buffer.BoundedBuffer(1)
    full = bounded_buffer.BoundedBuffer(1)
    call(full.put, 0)
    jobs = [start(empty.get, what="get() on an empty buffer"), start(full.put, 1, what="put(1) on a full buffer")]
    ran = lines_run_while(1.0)
    expect(all(job.running for job in jobs), "The blocked get() and put() should still be waiting.")
    expect(
        ran < 5,
        f"While one get() and one put() were waiting for 1 s, {ran} lines of bounded_buffer.py ran. "
        "A waiting thread should sleep in Condition.wait() until it is notified, not loop, poll or sleep "
        "and check again.",
    )
    call(empty.close)
    call(full.close)


@pytest.mark.parametrize("capacity", [1, 3])
def test_many_producers_and_consumers_lose_and_duplicate_nothing(bounded_buffer, capacity):
    buf = bounded_buffer.BoundedBuffer(capacity)
    producers, consumers, each = 4, 4, 150
    received = EventLog()
    sizes = EventLog()

    def producer(p):
        for i in range(each):
            buf.put((p, i))

    def consumer(c):
        for _ in range(each):
            received.add(buf.get())
            sizes.add(len(buf))

    failure = None
    try:
        run_threads(
            producers + consumers,
            lambda i: producer(i) if i < producers else consumer(i),
            within=5,
            what="producer/consumer",
        )
    except Exception as exc:  # noqa: BLE001 - told to the student in plain words, below
        failure = exc
    if failure is not None:
        fail(
            f"While {producers} producers and {consumers} consumers shared a buffer of capacity {capacity}, one of "
            f"them raised {shown(failure)}"
            + (
                ", though nobody had closed the buffer. A get() that wakes up must check again whether there is "
                "an item (another consumer may have taken it first): wait in a `while` loop, not an `if`."
                if isinstance(failure, bounded_buffer.Closed)
                else "."
            )
        )
    counts = Counter(received.events)
    lost = [(p, i) for p in range(producers) for i in range(each) if counts[(p, i)] == 0]
    doubled = [item for item, n in counts.items() if n > 1]
    expect(
        not lost and not doubled and len(received) == producers * each,
        f"{producers} producers put {producers * each} items and {consumers} consumers took them out: "
        f"{len(lost)} items were lost and {len(doubled)} came out more than once.",
    )
    expect(
        max(sizes.events) <= capacity,
        f"The buffer of capacity {capacity} held {max(sizes.events)} items at one point. A woken put must "
        "check again that there is room: wait in a `while` loop, not an `if`.",
    )
