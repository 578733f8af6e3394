"""Public tests for topic 10. Run them with:  pytest exercises/10_pipes

The hidden graders also check that pipe_map returns only after its child has exited, and
raises when its child dies; and that gather is not held up by a producer that dies, and
leaves no producer running.
"""

from conclab.testing import StuckChild, expect, fail, process_ids, running_since, start, workers


def test_pipe_map(pipe_worker):
    before = process_ids()
    job = start(pipe_worker.pipe_map, workers.square, [1, 2, 3], what="pipe_map(square, [1, 2, 3])")
    if not job.wait(5):
        if running_since(before):
            fail(
                "pipe_map(square, [1, 2, 3]) did not return within 5 s, and its child process was still running. "
                "A child that reads until EOFError waits for ever while any copy of the parent's end is open, the "
                "copy it inherited included: each side closes the ends it does not use."
            )
        fail("pipe_map(square, [1, 2, 3]) did not return within 5 s, although its child process had ended.")
    result = job.result()
    expect(result == [1, 4, 9], f"pipe_map(square, [1, 2, 3]) should return [1, 4, 9], got {result}.")


def test_gather(pipe_worker):
    before = process_ids()
    job = start(pipe_worker.gather, 2, 3, 10.0, what="gather(2, 3, timeout=10)")
    if not job.wait(5):
        if running_since(before):
            fail("gather(2, 3, timeout=10) did not return within 5 s, and its producers were still running.")
        fail(
            "gather(2, 3, timeout=10) did not return within 5 s, although both producers had ended. A pipe is at "
            "EOF only once every copy of its write end is closed, the parent's own copy too: close it right after "
            "starting each producer."
        )
    result = job.result()
    expect(
        result == [0, 1, 2, 1000, 1001, 1002],
        f"gather(2, 3, ...) should return [0, 1, 2, 1000, 1001, 1002], got {result}.",
    )


def test_gather_does_not_wait_for_a_stuck_producer(pipe_worker):
    before = process_ids()
    job = start(pipe_worker.gather, 2, 50_000, 0.5, what="gather(2, 50000, timeout=0.5)")
    with StuckChild(before) as stuck:  # the first producer stops sending, as if it were stuck
        if not job.wait(4):
            fail(
                "gather(2, 50000, timeout=0.5) had not returned 4 s later: one producer had stopped sending, and "
                "gather was still waiting for it. Read whichever pipe has data (multiprocessing.connection.wait), "
                "stop when the time is up, and stop the producers still running (terminate(), then join())."
            )
    expect(stuck.process is not None, "gather(2, ...) started no producer process.")
    result = job.result()
    expect(
        isinstance(result, list) and result == sorted(result),
        f"gather should return the numbers that arrived in time, sorted; it returned {type(result).__name__}.",
    )
