"""Public tests for topic 12. Run them with:  pytest exercises/12_pool

The hidden graders also time sum_of_squares with one and two processes, check that
apply_all's tasks really run at the same time and that its first exception reaches the
caller, and check when and in which process on_progress is called.
"""

import pytest

from conclab.testing import ChildWork, call, expect, no_pool_left, workers

pytestmark = pytest.mark.no_chaos  # the work runs in worker processes: forced thread switches do not apply


def test_sum_of_squares(pool_tasks):
    with no_pool_left("sum_of_squares(4000000)"), ChildWork() as work:
        result = call(pool_tasks.sum_of_squares, 4_000_000, within=10)
    expect(result == 21_333_325_333_334_000_000, f"sum_of_squares(4000000) should be 21333325333334000000, "
           f"got {result}.")
    expect(work.cpu_by_pid, "sum_of_squares started no worker process: use a pool of worker processes.")


def test_apply_all(pool_tasks):
    with no_pool_left("apply_all(square, [(1,), (2,), (3,)])"):
        result = call(pool_tasks.apply_all, workers.square, [(1,), (2,), (3,)], within=10)
    expect(result == [1, 4, 9], f"apply_all(square, [(1,), (2,), (3,)]) should return [1, 4, 9], got {result}.")


def test_apply_all_runs_the_tasks_at_the_same_time(pool_tasks, tmp_path):
    # Task "a" waits (at most 5 s) for a file that task "b" makes: b must start while a waits.
    flag = str(tmp_path / "b ran")
    a, b = call(pool_tasks.apply_all, workers.stamp, [("a", 0.0, "", flag), ("b", 0.0, "", "", flag)], 2, within=20)
    expect(b[2] < a[3], "apply_all did not start task b until task a had finished: submit every task with "
           "apply_async first, keep the AsyncResults in a list, and only then get() the results.")


def test_map_with_progress(pool_tasks):
    seen = []
    with no_pool_left("map_with_progress(square, [1, 2, 3])"):
        result = call(pool_tasks.map_with_progress, workers.square, [1, 2, 3], 2,
                      lambda done, total: seen.append((done, total)), within=10)
    expect(result == [1, 4, 9], f"map_with_progress(square, [1, 2, 3]) should return [1, 4, 9], got {result}.")
    expect(seen == [(1, 3), (2, 3), (3, 3)], f"on_progress should be called with (1, 3), (2, 3), (3, 3); got {seen}.")
