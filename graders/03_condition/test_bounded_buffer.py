"""Graders for topic 03: bounded_buffer.py."""

import threading
from collections import Counter
from time import monotonic

import pytest

from conclab.testing import (
    BLOCK,
    EventLog,
    blocks,
    call,
    expect,
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


# Without forced switches: the grader's get-then-put must keep the GIL between the two
# calls, so that the woken put really finds the buffer full again.
@pytest.mark.no_chaos
def test_timeout_keeps_waiting_after_a_wakeup_that_did_not_help(bounded_buffer):
    buf = bounded_buffer.BoundedBuffer(1)
    call(buf.put, "a")
    job = start(buf.put, "b", timeout=1.0, what="put('b', timeout=1.0) on a full buffer")

    def make_room_and_take_it_back():
        buf.get()  # wakes the waiting put...
        try:
            buf.put("a", timeout=0.05)  # ...but this thread takes the room back first
        except TimeoutError:
            pass  # the waiting put was quicker: fine too

    while job.running and monotonic() - job.started_at < 0.7:
        threading.Event().wait(0.1)
        if job.running:
            call(make_room_and_take_it_back, what="get() then put()")
    job.finished()
    expect(
        job.error is None or isinstance(job.error, TimeoutError),
        f"put(timeout=1.0) raised {shown(job.error)}; expected it to succeed or raise TimeoutError.",
    )
    if isinstance(job.error, TimeoutError):
        expect(
            job.duration >= 0.95,
            f"put(timeout=1.0) gave up after {job.duration:.2f} s. It was woken up, "
            "but another thread had taken the room first; then it should keep waiting for the time that is "
            "left (a while loop around wait(), with a deadline), not give up.",
        )


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

    run_threads(
        producers + consumers,
        lambda i: producer(i) if i < producers else consumer(i),
        within=5,
        what="producer/consumer",
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
