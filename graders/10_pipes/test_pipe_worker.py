"""Graders for topic 10: pipe_worker.py."""

import threading

import psutil
import pytest

from conclab.testing import (
    ChildWork,
    call,
    expect,
    process_ids,
    shown,
    start,
    started_since,
    unjoined_children,
    workers,
)

pytestmark = pytest.mark.no_chaos  # child processes: forced thread switches do not apply


def test_pipe_map_uses_one_child_and_returns_after_it_exited(pipe_worker):
    before, unjoined_before = process_ids(), unjoined_children()
    with ChildWork() as work:
        result = call(pipe_worker.pipe_map, workers.square, range(200), within=4, what="pipe_map(square, range(200))")
    expect(result == [x * x for x in range(200)], f"pipe_map(square, range(200)) returned {result[:5]}...")
    expect(len(work.cpu_by_pid) <= 1, f"pipe_map should start ONE child process; {len(work.cpu_by_pid)} were seen.")
    expect(
        not started_since(before) and not unjoined_children() - unjoined_before,
        "pipe_map returned before its child process had exited and been joined.",
    )


def test_pipe_map_of_nothing(pipe_worker):
    expect(call(pipe_worker.pipe_map, workers.square, [], within=4) == [], "pipe_map(func, []) should return [].")


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
    alive = [p for p in started_since(before) if p.status() != psutil.STATUS_ZOMBIE]
    expect(not alive, "gather returned while producer processes were still running.")


def test_gather_is_not_held_up_by_a_producer_that_stops_sending(pipe_worker):
    before = process_ids()
    count = 50_000
    job = start(pipe_worker.gather, 3, count, 2.0, what="gather(3, 50000, timeout=2) with a stuck producer")
    stopped = []

    def stop_one_producer():  # a producer that stops sending, as if it were stuck
        for _ in range(400):
            children = started_since(before)
            busy = [p for p in children if p.status() != psutil.STATUS_ZOMBIE]
            if len(busy) >= 3:
                busy[0].suspend()
                stopped.append(busy[0])
                return
            threading.Event().wait(0.005)

    stopper = threading.Thread(target=stop_one_producer, name="grader:stopper", daemon=True)
    stopper.start()
    try:
        job.finished(within=5)
    finally:
        stopper.join()
        for proc in stopped:
            try:
                proc.resume()
            except psutil.Error:
                pass
    expect(stopped, "gather did not start 3 producer processes.")
    expect(job.error is None, f"gather raised {shown(job.error)}.")
    expect(
        job.duration < 5,
        f"gather(..., timeout=2) took {job.duration:.1f} s although one producer had stopped: "
        "read whichever pipe has data (multiprocessing.connection.wait), not one producer after the other, "
        "and stop when the time is up.",
    )
    expect(
        isinstance(job.value, list) and job.value == sorted(job.value) and len(job.value) > 0,
        f"gather should return the numbers that arrived before the timeout, sorted; it returned "
        f"{type(job.value).__name__} of length {len(job.value) if hasattr(job.value, '__len__') else '?'}.",
    )
