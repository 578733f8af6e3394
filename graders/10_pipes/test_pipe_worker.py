"""Graders for topic 10: pipe_worker.py."""

import collections
import os
import time

import psutil
import pytest

from conclab.testing import (
    ChildWork,
    StuckChild,
    call,
    expect,
    fail,
    process_ids,
    raises,
    running_since,
    shown,
    start,
    started_since,
    stuck_report,
    unjoined_children,
    workers,
)

pytestmark = pytest.mark.no_chaos  # child processes: forced thread switches do not apply


def still_running_after(before, seconds):
    """The processes started since `before` still running after waiting up to `seconds` for
    those that are ending (a producer terminated a moment ago may need a few milliseconds)."""
    deadline = time.monotonic() + seconds
    while (alive := running_since(before)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return alive


def test_pipe_map_uses_one_child_and_returns_after_it_exited(pipe_worker):
    before, unjoined_before = process_ids(), unjoined_children()
    here = workers.counted_calls.get(os.getpid(), 0)  # calls of func made in this process
    items = [(i * 37) % 200 for i in range(200)]  # 0..199, not in order
    with ChildWork() as work:
        job = start(pipe_worker.pipe_map, workers.counted_square, items, what="pipe_map(square, items)")
        if not job.wait(4):
            alive = running_since(before)
            fail(
                "pipe_map(square, items) did not return within 4 s; "
                + (
                    "its child process was still running. A child that reads until EOFError waits for ever while "
                    "any copy of the parent's end is open, its own inherited copy included: each side closes the "
                    "ends it does not use."
                    if alive
                    else "its child process had ended."
                )
            )
        result = job.result()
    expect(
        result == [x * x for x in items],
        f"pipe_map(square, items) should return the squares of the items, in the order of the items; for the "
        f"items {items[:4]}... it returned {shown(result)}.",
    )
    expect(
        workers.counted_calls.get(os.getpid(), 0) == here,
        "pipe_map computed func(item) in the calling process: the child process should compute it and send it back.",
    )
    expect(len(work.cpu_by_pid) <= 1, f"pipe_map should start ONE child process; {len(work.cpu_by_pid)} were seen.")
    expect(
        not started_since(before) and not unjoined_children() - unjoined_before,
        "pipe_map returned before its child process had exited and been joined.",
    )


def test_pipe_map_of_nothing(pipe_worker):
    expect(call(pipe_worker.pipe_map, workers.square, [], within=3) == [], "pipe_map(func, []) should return [].")


def expect_pipe_map_raises(job, before, what):
    """The pipe_map job must raise within a few seconds, and leave no child running."""
    if not job.wait(4):
        if running_since(before):
            fail(f"{what}: pipe_map did not return within 4 s, and its child process was still running.")
        fail(
            f"{what}: pipe_map was still waiting 4 s later, although its child process had ended. The parent's "
            "recv() raises EOFError only once every copy of the child's end is closed: the parent's own copy too, "
            "which it closes right after start()."
        )
    with raises(Exception, f"{what}: pipe_map should raise an exception, since some results can never come"):
        job.result()
    left = still_running_after(before, 1.0)
    expect(not left, f"{what}: pipe_map raised, but left its child process running.")


def test_pipe_map_raises_when_func_raises_in_the_child(pipe_worker):
    before = process_ids()
    items = [(1, 0.0, ""), (2, 0.0, "func fails on purpose")]
    job = start(pipe_worker.pipe_map, workers.stamp_one, items, what="pipe_map(func, items)")
    expect_pipe_map_raises(job, before, "When func raises ValueError in the child")


def test_pipe_map_raises_when_its_child_dies(pipe_worker, tmp_path):
    before, working = process_ids(), tmp_path / "working"
    items = [(0, 0.0, "", "", str(working)), (1, 30.0)]  # the second takes 30 s
    job = start(pipe_worker.pipe_map, workers.stamp_one, items, what="pipe_map(func, items)")
    deadline = time.monotonic() + 5
    while not working.exists() and job.running and time.monotonic() < deadline:
        time.sleep(0.005)
    children = running_since(before)
    expect(working.exists() and children, "pipe_map(func, items) never ran func in a child process.")
    for child in children:
        try:
            child.kill()  # the child dies while the parent waits for its result
        except psutil.Error:
            pass
    expect_pipe_map_raises(job, before, "When the child process is killed while it works")


def test_gather_collects_every_number_sorted(pipe_worker):
    before = process_ids()
    job = start(pipe_worker.gather, 3, 500, 20.0, what="gather(3, 500, timeout=20)")
    result = job.result(within=5)
    expected = sorted(p * 1000 + i for p in range(3) for i in range(500))
    expect(
        result == expected,
        f"gather(3, 500, ...) should return the 1500 numbers p * 1000 + i, sorted; got {len(result)} numbers.",
    )
    expect(
        job.duration < 5,
        f"gather took {job.duration:.1f} s although every producer finished at once: stop "
        "when every pipe is at EOF (close your copies of the write ends, or EOF never comes).",
    )
    alive = running_since(before)
    expect(not alive, "gather returned while producer processes were still running.")


def test_gather_returns_soon_after_a_producer_dies(pipe_worker):
    before, count = process_ids(), 10_000
    job = start(pipe_worker.gather, 3, count, 20.0, what="gather(3, 10000, timeout=20)")
    with StuckChild(before) as stuck:  # held, so that it dies before it has sent everything
        seen, deadline = set(), time.monotonic() + 5
        while job.running and time.monotonic() < deadline and (len(seen) < 3 or stuck.process is None):
            seen |= {proc.pid for proc in started_since(before)}
            time.sleep(0.003)
        expect(stuck.process is not None, "gather(3, ...) started no producer process.")
        stuck.process.kill()  # a producer that dies early (once gather has started them all)
    if not job.wait(6):
        others = running_since(before)
        fail(
            "gather(3, 10000, timeout=20) was still waiting 6 s after one of its producers had died"
            + (
                f" ({len(others)} other producer(s) still running).\n{stuck_report([job])}"
                if others
                else ", although the others had ended: the pipe of a producer that has died is at EOF too. Stop "
                "once every pipe is at EOF, not once every number has arrived (they never will)."
            )
        )
    expect(job.error is None, f"gather raised {shown(job.error)} when one of its producers had died.")
    got = job.value
    expect(isinstance(got, list), f"gather should return a list; it returned {shown(got)}.")
    sent = collections.Counter(p * 1000 + i for p in range(3) for i in range(count))
    invented = collections.Counter(got) - sent
    expect(
        not invented and got == sorted(got) and len(got) >= 2 * count,
        f"gather should return, sorted, every number the two producers that lived sent (2 x {count}) and those "
        f"the dead one sent before it died; it returned {len(got)} numbers"
        + (f", {sum(invented.values())} of them never sent." if invented else "."),
    )
    left = still_running_after(before, 1.0)
    expect(not left, f"gather returned, but left {len(left)} producer process(es) running.")


def test_gather_is_not_held_up_by_a_producer_that_stops_sending(pipe_worker):
    before = process_ids()
    job = start(pipe_worker.gather, 3, 50_000, 1.5, what="gather(3, 50000, timeout=1.5) with a stuck producer")
    with StuckChild(before) as stuck:  # a producer that stops sending, as if it were stuck
        if not job.wait(4.5):
            fail(
                "gather(3, 50000, timeout=1.5) had not returned 4.5 s later: one of its producers had stopped sending, "
                "and gather was still waiting for it. Read whichever pipe has data (multiprocessing.connection.wait), "
                "stop when the time is up, then stop the producers still running (terminate() or kill(), then "
                f"join()).\n{stuck_report([job])}"
            )
        expect(stuck.process is not None, "gather(3, ...) started no producer process.")
        left = still_running_after(before, 1.0)
    expect(job.error is None, f"gather raised {shown(job.error)}.")
    expect(
        job.duration < 4.5,
        f"gather(..., timeout=1.5) took {job.duration:.1f} s although one producer had stopped: "
        "read whichever pipe has data (multiprocessing.connection.wait), not one producer after the other, "
        "and stop when the time is up.",
    )
    expect(
        isinstance(job.value, list) and job.value == sorted(job.value) and len(job.value) > 0,
        f"gather should return the numbers that arrived before the timeout, sorted; it returned "
        f"{type(job.value).__name__} of length {len(job.value) if hasattr(job.value, '__len__') else '?'}.",
    )
    expect(
        not left,
        f"gather returned at its timeout, but left {len(left)} producer process(es) running: stop the producers "
        "that have not finished (terminate() or kill(), then join()).",
    )
