"""Public tests for topic 09. Run them with:  pytest exercises/09_processes

The hidden graders also count with more processes (a missing lock loses updates), check
that a timed-out child is really gone (no zombie), and run everything under the spawn
start method, where targets must be module-level functions.
"""

import multiprocessing

from conclab.testing import call, drain, expect, workers


def test_count_in_processes(processes):
    result = call(processes.count_in_processes, 2, 1000, within=20)
    expect(result == 2000, f"count_in_processes(2, 1000) should return 2000, got {result}."
           + (" Each process added 1 to its own copy of the counter: processes share no memory, so share a"
              " multiprocessing.Value instead." if result == 0 else ""))


def test_run_with_timeout(processes):
    expect(call(processes.run_with_timeout, workers.exit_with, (4,), 5.0, within=10) == 4,
           "run_with_timeout should return the child's exit code (4).")
    expect(call(processes.run_with_timeout, workers.sleep_for, (30,), 0.3, within=10) is None,
           "run_with_timeout should return None for a child still running after the timeout.")


def test_square_process(processes):
    results = multiprocessing.Queue()
    square = processes.SquareProcess(6, results)
    square.start()
    square.join(20)
    got = next(iter(drain(results, 1)), None)
    expect(got == (6, 36), f"SquareProcess(6) should put (6, 36) on the results queue, got {got!r}.")
