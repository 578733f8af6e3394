"""Graders for topic 09: processes.py."""

import multiprocessing

import psutil
import pytest

from conclab.testing import (
    ChildWork,
    call,
    drain,
    expect,
    process_ids,
    shown,
    start,
    started_since,
    unjoined_children,
    workers,
)

pytestmark = pytest.mark.no_chaos  # child processes: forced thread switches do not apply


# Enough increments that the processes run side by side whatever the start method: spawned
# children start tens of milliseconds apart (more under load), and a child that does its
# whole share before the next one starts loses nothing, so smaller counts let the race hide.
@pytest.mark.parametrize("n, increments", [(4, 200_000), (2, 300_000), (1, 10)])
def test_count_in_processes_loses_no_update(processes, n, increments):
    with ChildWork() as work:
        result = call(processes.count_in_processes, n, increments, within=30)
    expect(
        result != 0 or n * increments == 0,
        f"count_in_processes({n}, {increments}) returned 0: each process changed its own copy of the counter. "
        "Processes share no memory: use a multiprocessing.Value.",
    )
    expect(
        result == n * increments,
        f"count_in_processes({n}, {increments}) returned {result}, expected {n * increments}: "
        f"{n * increments - result} updates were lost. `value.value += 1` reads, adds and writes: hold "
        "value.get_lock() around it.",
    )
    if increments >= 10_000:  # long enough for every process to be seen at work
        expect(
            len(work.cpu_by_pid) >= n,
            f"count_in_processes({n}, ...) should start {n} processes; {len(work.cpu_by_pid)} were seen.",
        )


def test_run_with_timeout_returns_the_exit_code(processes):
    for target, args, code in [(workers.sleep_for, (0.05,), 0), (workers.exit_with, (3,), 3), (workers.fail, (), 1)]:
        got = call(processes.run_with_timeout, target, args, 5.0, within=15)
        expect(
            got == code,
            f"run_with_timeout({target.__name__}{args}) should return the exit code {code}, got {shown(got)}.",
        )


def test_run_with_timeout_runs_the_target_in_a_child_process(processes):
    # BurnElsewhere raises ComputedHere when it is called in the process that made it (this one).
    what = "run_with_timeout(target, (1000,), timeout=10)"
    job = start(processes.run_with_timeout, workers.BurnElsewhere(), (1000,), 10.0, what=what).finished(within=20)
    expect(
        not isinstance(job.error, workers.ComputedHere),
        f"{what} called target(1000) here, in the calling process. Hand the function itself to the child: "
        "multiprocessing.Process(target=target, args=args) (writing target=target(*args) would call it at once, here).",
    )
    got = job.result(within=1)
    expect(
        got == 0,
        f"{what} should run target(1000) in a new child process, which then exits with code 0; it returned "
        f"{shown(got)}.",
    )


def test_run_with_timeout_waits_for_the_child_up_to_its_timeout_and_no_longer(processes):
    what = "run_with_timeout(sleep 1.5 s, timeout=20)"
    job = start(processes.run_with_timeout, workers.sleep_for, (1.5,), 20.0, what=what)
    got = job.result(within=30)
    expect(
        got == 0,
        f"{what} should wait for the child, which ends after 1.5 s, and return its exit code 0; it returned "
        f"{shown(got)}. Join the process with the `timeout` the caller gave, not a time of your own.",
    )
    expect(
        job.duration < 12,
        f"{what} took {job.duration:.1f} s although the child ended after 1.5 s: return as soon as the child "
        "has ended. process.join(timeout) returns then; sleeping for the whole timeout does not.",
    )


def test_run_with_timeout_terminates_and_reaps_a_child_that_runs_too_long(processes):
    before, unjoined_before = process_ids(), unjoined_children()
    job = start(
        processes.run_with_timeout, workers.sleep_for, (60,), 0.5, what="run_with_timeout(sleep 60 s, timeout=0.5)"
    )
    got = job.result(within=8)
    expect(
        got is None, f"run_with_timeout should return None when the child was still running; it returned {shown(got)}."
    )
    expect(job.duration < 4, f"run_with_timeout(..., timeout=0.5) took {job.duration:.1f} s.")
    left = started_since(before)
    alive = [p for p in left if p.status() != psutil.STATUS_ZOMBIE]
    expect(not alive, "run_with_timeout returned but the child process is still running: terminate() it.")
    expect(
        not left and not unjoined_children() - unjoined_before,
        "run_with_timeout terminated the child but never joined it (under the fork start method it stays a "
        "zombie): join() it after terminate().",
    )


def test_square_process_sends_its_result_from_the_child(processes):
    results = multiprocessing.Queue()
    workers_ = [processes.SquareProcess(n, results) for n in (3, 7, 11)]
    expect(
        all(isinstance(w, multiprocessing.Process) for w in workers_),
        "SquareProcess must subclass multiprocessing.Process.",
    )
    early = drain(results, 1, timeout=0.3)
    expect(
        not early,
        f"Three SquareProcess objects were made but none was started, yet the results queue already held "
        f"{shown(early[0]) if early else ''}. The square belongs in run(), which the child runs once start() "
        "is called, not in __init__.",
    )
    for w in workers_:
        w.start()
    for w in workers_:  # a tuple fits in the pipe's buffer: joining first cannot block on it
        w.join(20)
    got = drain(results, len(workers_))
    expect(
        sorted(got) == [(3, 9), (7, 49), (11, 121)],
        f"The three SquareProcess children should put (3, 9), (7, 49) and (11, 121) on the results queue; "
        f"the queue got {sorted(got)}. An attribute set in run() stays in the child's copy of the object.",
    )


def test_everything_works_under_the_spawn_start_method(processes):
    """Spawned children import the module and get their targets by name: targets must be
    module-level functions (not lambdas, not nested functions)."""
    previous = multiprocessing.get_start_method(allow_none=True)
    multiprocessing.set_start_method("spawn", force=True)
    try:
        job = start(processes.count_in_processes, 2, 100, what="count_in_processes(2, 100) under spawn")
        job.finished(within=30)
        timed = start(
            processes.run_with_timeout, workers.exit_with, (3,), 20.0, what="run_with_timeout(exit 3) under spawn"
        )
        timed.finished(within=30)
        results = multiprocessing.Queue()
        square = processes.SquareProcess(5, results)
        square.start()
        square.join(20)
        got = next(iter(drain(results, 1)), None)
    finally:
        multiprocessing.set_start_method(previous, force=True)
    expect(
        job.error is None and job.value == 200,
        f"Under the spawn start method count_in_processes(2, 100) "
        f"{'raised ' + shown(job.error) if job.error else 'returned ' + shown(job.value)}, expected 200. Child "
        "processes get their target by name: use a function defined at the top level of processes.py.",
    )
    expect(
        timed.error is None and timed.value == 3,
        f"Under the spawn start method run_with_timeout(exit_with, (3,)) "
        f"{'raised ' + shown(timed.error) if timed.error else 'returned ' + shown(timed.value)}, expected the exit "
        "code 3. Hand the target itself to the Process (target=target, args=args): a lambda or a function defined "
        "inside run_with_timeout cannot be sent to a spawned child.",
    )
    expect(got == (5, 25), f"Under spawn, SquareProcess(5) should put (5, 25) on the queue; got {shown(got)}.")
