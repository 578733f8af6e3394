"""Graders for topic 12: pool_tasks.py."""

import os

import pytest

from conclab.testing import (
    ChildWork,
    Timeline,
    call,
    expect,
    expect_speedup,
    no_pool_left,
    raises,
    shown,
    workers,
)

pytestmark = pytest.mark.no_chaos  # the work runs in child processes: forced thread switches do not apply

CLOCK_SLACK = 0.05  # two processes read the same clock; allow for its resolution


def squares_below(n):
    return (n - 1) * n * (2 * n - 1) // 6 if n > 0 else 0


def most_at_once(stamps):
    """The largest number of tasks that were running at the same moment."""
    return max(
        (sum(1 for _, _, start, end in stamps if start <= moment < end - CLOCK_SLACK) for _, _, moment, _ in stamps),
        default=0,
    )


# ------------------------------------------------------------------ sum_of_squares


@pytest.mark.parametrize("processes", [1, 2, 3])
def test_sum_of_squares_is_right_and_computed_in_worker_processes(pool_tasks, processes):
    for n in (0, 1, 2, 3, 10, 1001, 12_345):
        with no_pool_left(f"sum_of_squares({n}, processes={processes})"):
            result = call(pool_tasks.sum_of_squares, n, processes, within=10)
        expect(
            result == squares_below(n),
            f"sum_of_squares({n}, processes={processes}) should be "
            f"{squares_below(n)} (0*0 + 1*1 + ... + {max(n - 1, 0)}*{max(n - 1, 0)}), got {result}.",
        )
    n = 16_000_000  # enough computing that a worker's start-up (an interpreter, under spawn) is a small share
    with ChildWork() as work:
        result = call(pool_tasks.sum_of_squares, n, processes, within=20)
    expect(
        result == squares_below(n),
        f"sum_of_squares({n}, processes={processes}) should be {squares_below(n)}, got {result}.",
    )
    # A worker that did a tenth of the work counts: on a busy machine the workers start late and
    # unevenly, and one may take most chunks; a single chunk leaves the others at their start-up.
    computing = work.pids(share=0.1)
    expect(
        computing,
        f"sum_of_squares({n}, processes={processes}) did all the computing in the calling process. "
        "Cut range(n) into chunks and compute them with pool.map in a multiprocessing.Pool.",
    )
    expect(
        len(computing) >= min(processes, 2),
        f"sum_of_squares({n}, processes={processes}) computed in {len(computing)} worker process(es); "
        f"with processes={processes}, at least {min(processes, 2)} should share the work. Make more chunks than "
        "processes, so that every worker gets some.",
    )
    expect(
        len(work.cpu_by_pid) <= processes,
        f"sum_of_squares(..., processes={processes}) started {len(work.cpu_by_pid)} processes: use `processes`.",
    )


@pytest.mark.alone
def test_sum_of_squares_is_really_faster_with_two_processes(pool_tasks):
    expect_speedup(
        lambda size, n: call(pool_tasks.sum_of_squares, size, n, within=30),
        size=1_000_000,
        limit=256_000_000,
        what=lambda size: f"sum_of_squares({size})",
    )


# ------------------------------------------------------------------ apply_all


@pytest.mark.parametrize("processes, tasks", [(2, 4), (3, 6)])
def test_apply_all_submits_every_task_before_waiting(pool_tasks, processes, tasks):
    args_list = [(f"task {i}", 0.4) for i in range(tasks)]
    what = f"apply_all(func, {tasks} tasks of 0.4 s, processes={processes})"
    with no_pool_left(what):
        stamps = call(pool_tasks.apply_all, workers.stamp, args_list, processes, within=15, what=what)
    expect(
        isinstance(stamps, list) and [s[0] for s in stamps] == [f"task {i}" for i in range(tasks)],
        f"{what} should return the {tasks} results in the order of args_list.",
    )
    together = most_at_once(stamps)
    timeline = Timeline()
    for _, pid, start, end in stamps:
        timeline.add(f"process {pid}", start, end)
    expect(
        together >= 2,
        f"In {what}, the tasks ran one after another (never two at once). Calling .get() right "
        "after apply_async waits for that task before the next one is even submitted. Submit every task first, "
        f"keep the AsyncResults in a list, then get() them.\nWhen each task ran, one row per worker process:\n"
        f"{timeline.picture()}",
    )
    pids = {pid for _, pid, _, _ in stamps}
    expect(
        os.getpid() not in pids,
        f"{what} ran the tasks in the calling process (in threads?). Hand them to a multiprocessing.Pool of "
        "`processes` worker processes.",
    )
    expect(
        len(pids) <= processes and together <= processes,
        f"{what} ran tasks in {len(pids)} processes, up to {together} at once: use a pool of `processes`.",
    )
    expect(
        call(pool_tasks.apply_all, workers.stamp, [], processes, within=10) == [],
        "apply_all(func, []) should return [].",
    )


def test_apply_all_returns_the_results_in_the_order_of_args_list(pool_tasks, tmp_path):
    # Task 0 waits until task 2 is done, so the results arrive in the order 1, 2, 0.
    flag = str(tmp_path / "task 2 done")
    args_list = [("a", 0.0, "", flag), ("b", 0.0), ("c", 0.0, "", "", flag)]
    what = "apply_all(func, args_list, processes=2) where task 0 finishes last"
    with no_pool_left(what):
        stamps = call(pool_tasks.apply_all, workers.stamp, args_list, 2, within=15, what=what)
    got = [s[0] for s in stamps] if isinstance(stamps, list) else stamps
    expect(
        got == ["a", "b", "c"],
        f"{what} returned the results of the tasks {shown(got)}; expected them in the order of args_list, "
        "['a', 'b', 'c'], whatever order they finished in. Keep the AsyncResults in a list in the order you "
        "submitted them, and get() them in that order.",
    )


def test_apply_all_reraises_the_first_exception(pool_tasks, tmp_path):
    # Task 3 fails first in time; task 1, first in order, fails once every other task is done.
    # Leaving the pool's `with` terminates its workers, and a worker terminated while sending
    # a result leaves the pool's result lock taken: Python then waits for it for ever.
    done = str(tmp_path / "task 3 done")
    args_list = [
        ("a", 0.0),
        ("b", 0.2, "task 1 went wrong", done),
        ("c", 0.0),
        ("d", 0.0, "task 3 went wrong", "", done),
    ]
    what = "apply_all(func, args_list) where tasks 1 and 3 raise ValueError"
    promise = (
        f"{what} should let ValueError('task 1 went wrong') reach the caller (get() on an AsyncResult re-raises "
        "the task's exception: do not catch it)"
    )
    with no_pool_left(what), raises(ValueError, promise) as caught:
        call(pool_tasks.apply_all, workers.stamp, args_list, 2, within=10, what=what)
    expect(
        str(caught[0]) == "task 1 went wrong",
        f"{what} raised ValueError({str(caught[0])!r}); the first exception in the order of args_list, "
        "ValueError('task 1 went wrong'), should reach the caller, even though task 3 failed sooner.",
    )


# ------------------------------------------------------------------ map_with_progress


def test_map_with_progress_returns_results_in_order_and_leaves_no_pool(pool_tasks):
    items = [(i, 0.05 * (i % 3)) for i in range(9)]
    for processes in (1, 2, 3):
        what = f"map_with_progress(func, 9 items, processes={processes})"
        with no_pool_left(what):
            stamps = call(pool_tasks.map_with_progress, workers.stamp_one, items, processes, within=15, what=what)
        expect(
            isinstance(stamps, list) and [s[0] for s in stamps] == list(range(9)),
            f"{what} should return func(item) for every item, in the order of the items.",
        )
        pids = {pid for _, pid, _, _ in stamps}
        expect(
            os.getpid() not in pids and len(pids) <= processes,
            f"{what} ran func in {len(pids)} process(es){' including the caller' if os.getpid() in pids else ''}:"
            f" use a pool of `processes` worker processes.",
        )
    with no_pool_left("map_with_progress(func, [])"):
        expect(
            call(pool_tasks.map_with_progress, workers.stamp_one, [], within=10) == [],
            "map_with_progress(func, []) should return [].",
        )


def map_with_progress_file(pool_tasks, items, path, what):
    """Run map_with_progress(workers.stamp_one, items, 2, on_progress) with a workers.ProgressFile; return
    the stamps and the on_progress calls (pid, done, total, time)."""
    progress = workers.ProgressFile(str(path))
    with no_pool_left(what):
        stamps = call(pool_tasks.map_with_progress, workers.stamp_one, items, 2, progress, within=15, what=what)
    expect(
        isinstance(stamps, list) and [s[0] for s in stamps] == list(range(len(items))),
        f"{what} should return the {len(items)} results in the order of the items, whatever order they finish in.",
    )
    return stamps, progress.calls()


def test_progress_is_reported_in_the_parent_one_by_one_as_results_arrive(pool_tasks, tmp_path):
    # Results that arrive over about a second: the first ones early, the last ones late.
    items = [(i, seconds) for i, seconds in enumerate([0.0, 0.0, 0.1, 0.1, 1.0, 1.0])]
    what = "map_with_progress(func, 6 items, processes=2, on_progress)"
    stamps, calls = map_with_progress_file(pool_tasks, items, tmp_path / "progress", what)
    elsewhere = sorted({pid for pid, *_ in calls if pid != os.getpid()})
    expect(
        not elsewhere,
        f"on_progress was called in process(es) {elsewhere}, not in the parent ({os.getpid()}). "
        "A worker only computes func(item); the parent counts the results as they come back and calls "
        "on_progress itself.",
    )
    expect(
        [(done, total) for _, done, total, _ in calls] == [(k, 6) for k in range(1, 7)],
        f"{what} called on_progress with {[(done, total) for _, done, total, _ in calls]}; expected (1, 6), "
        "(2, 6), ... (6, 6): one call per result, done counting up.",
    )
    ends = sorted(end for *_, end in stamps)
    for (_, done, _, when), end in zip(calls, ends):
        expect(
            when >= end - CLOCK_SLACK,
            f"on_progress({done}, 6) was called before {done} results were done. Call "
            "it after each result has arrived.",
        )
    expect(
        calls[0][3] < ends[-1],
        f"{what} called on_progress only after the last result was done (the first item "
        "took no time, the last ones 1 s). Report each result as it arrives, for example while iterating over "
        "pool.imap(func, items), not after pool.map has returned everything.",
    )

    # Results that finish out of order: item 0 waits until item 1 is done.
    flag = str(tmp_path / "item-1-done")
    items = [(0, 0.0, "", flag), (1, 0.05, "", "", flag), (2, 0.0), (3, 0.0)]
    what = "map_with_progress(func, 4 items, processes=2, on_progress) where item 1 finishes before item 0"
    _, calls = map_with_progress_file(pool_tasks, items, tmp_path / "progress-2", what)
    seen = [(done, total) for _, done, total, _ in calls]
    expect(
        seen == [(k, 4) for k in range(1, 5)],
        f"{what} called on_progress with {seen}; expected (1, 4), (2, 4), "
        "(3, 4), (4, 4). `done` is how many results have arrived so far, not the position of the item.",
    )
