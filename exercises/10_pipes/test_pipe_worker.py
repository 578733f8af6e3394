"""Public tests for topic 10. Run them with:  pytest exercises/10_pipes

The hidden graders also check that pipe_map returns only after its child has exited,
and that gather is not held up by a producer that stops sending.
"""

from conclab.testing import call, expect, workers


def test_pipe_map(pipe_worker):
    result = call(pipe_worker.pipe_map, workers.square, [1, 2, 3], within=5, what="pipe_map(square, [1, 2, 3])")
    expect(result == [1, 4, 9], f"pipe_map(square, [1, 2, 3]) should return [1, 4, 9], got {result}.")


def test_gather(pipe_worker):
    result = call(pipe_worker.gather, 2, 3, 10.0, within=5, what="gather(2, 3, timeout=10)")
    expect(result == [0, 1, 2, 1000, 1001, 1002], f"gather(2, 3, ...) should return [0, 1, 2, 1000, 1001, 1002], "
           f"got {result}.")
