"""Graders for topic 06: pipeline.py."""

import threading
from time import monotonic

from conclab.testing import (
    EventLog,
    Rendezvous,
    blocks,
    call,
    expect,
    fail,
    no_new_threads,
    shown,
    start,
    stuck_report,
    uses_module,
)

# ------------------------------------------------------------------ run_pipeline


def test_every_item_passes_every_stage_in_order(pipeline):
    expect(uses_module(pipeline, "queue"), "pipeline.py should link the stages with queue.Queue.")
    stages = [lambda x: x + 1, lambda x: x * 10, lambda x: x - 3]
    with no_new_threads("run_pipeline"):
        result = call(pipeline.run_pipeline, range(30), stages, 3, 4, within=8)
    expected = [(x + 1) * 10 - 3 for x in range(30)]
    expect(
        result == expected,
        f"run_pipeline(range(30), [+1, *10, -3]) should return {expected[:5]}..., got "
        f"{result[:5] if isinstance(result, list) else result!r}...",
    )


def test_results_come_back_in_input_order_not_completion_order(pipeline):
    done = [threading.Event() for _ in range(6)]

    def slow_first(x):
        if x + 1 < 6:
            done[x + 1].wait(2)  # each item finishes after the next one
        if x == 0:
            threading.Event().wait(0.3)  # and the first a moment after all the others
        done[x].set()
        return x * x

    result = call(pipeline.run_pipeline, range(6), [slow_first], 6, 8, within=8)
    expected = [x * x for x in range(6)]
    expect(
        not isinstance(result, list) or sorted(map(repr, result)) == sorted(map(repr, expected)),
        f"The items finished last-to-first (item 0 a moment after the others), and run_pipeline returned {result}, "
        f"not one output per input ({expected} in some order): keep collecting until every worker of the last "
        "stage has stopped.",
    )
    expect(
        result == expected,
        f"The items finished last-to-first, and run_pipeline returned "
        f"{result}: the results must be put back in input order ({expected}). Send the index along.",
    )


def test_each_stage_runs_in_workers_threads(pipeline):
    meetings = [Rendezvous(3), Rendezvous(3)]
    names = [EventLog(), EventLog()]

    def stage(k):
        def run(x):
            names[k].add(threading.current_thread().name)
            meetings[k].arrive()
            return x

        return run

    result = call(pipeline.run_pipeline, range(12), [stage(0), stage(1)], 3, 8, within=8)
    for k in (0, 1):
        expect(
            meetings[k].max_together == 3,
            f"Stage {k + 1} should run in 3 threads at once (workers=3), but at "
            f"most {meetings[k].max_together} of its calls ran at the same time.",
        )
    expect(
        len(set(names[0].events) | set(names[1].events)) == 6,
        "Each stage should have its own 3 worker threads (6 in all for 2 stages).",
    )
    expect(result == list(range(12)), f"run_pipeline returned {result}.")


def test_bounded_queues_hold_a_fast_stage_back(pipeline):
    gate = threading.Event()
    fast_calls = EventLog()

    def fast(x):
        fast_calls.add(x)
        return x

    def slow(x):
        gate.wait(5)
        return x

    job = start(pipeline.run_pipeline, range(200), [fast, slow], 2, 4, what="run_pipeline with a slow last stage")
    threading.Event().wait(0.6)
    ahead = len(fast_calls)
    gate.set()
    result = job.result(within=8)
    limit = 2 * 2 + 4 + 4  # in the slow stage, in the queue between, waiting to put, and a little slack
    expect(
        ahead <= limit,
        f"While the last stage was stuck, the first stage went ahead with {ahead} of 200 items. "
        f"With workers=2 and maxsize=4 it should stop after about {limit}: use queue.Queue(maxsize) so that a full "
        "queue makes the stage before it wait (back-pressure).",
    )
    expect(result == list(range(200)), "All 200 items should come out, in order.")


def test_an_empty_input_gives_an_empty_output(pipeline):
    with no_new_threads("run_pipeline"):
        expect(call(pipeline.run_pipeline, [], [abs, abs]) == [], "run_pipeline([], stages) should return [].")


def test_a_failing_stage_is_reraised_once_every_thread_stopped(pipeline):
    failed = threading.Event()
    held = EventLog()  # item 3 keeps a worker of stage 2 busy until after item 7 has failed

    def picky(x):
        if x == 3:
            held.add("start")
            failed.wait(2)
            threading.Event().wait(0.5)
            held.add(("end", monotonic()))
        if x == 7:
            failed.set()
            raise ValueError("seven")
        return x

    with no_new_threads("run_pipeline"):
        job = start(
            pipeline.run_pipeline,
            range(300),
            [abs, picky, abs],
            2,
            2,
            what="run_pipeline where stage 2 raises on item 7",
        )
        job.finished(within=8)
        expect(
            "start" not in held.events or (len(held) == 2 and held.events[1][1] <= job.finished_at),
            "Stage 2 raised on item 7 while its other worker was still busy with item 3, and run_pipeline raised "
            "before that worker had finished: re-raise the exception only once every thread has stopped (join them "
            "all first).",
        )
    expect(
        isinstance(job.error, ValueError) and str(job.error) == "seven",
        f"Stage 2 raised ValueError('seven'); run_pipeline should raise it, but it "
        f"{'raised ' + shown(job.error) if job.error else 'returned'}.",
    )


def test_a_stage_failing_on_many_items_is_reraised_once_every_thread_stopped(pipeline):
    raised = EventLog()

    def fails_from_five(x):
        if x >= 5:
            error = ValueError(f"item {x}")
            raised.add(error)
            raise error
        return x

    with no_new_threads("run_pipeline"):
        job = start(pipeline.run_pipeline, range(300), [abs, fails_from_five, abs], 2, 2)
        if not job.wait(5):
            fail(
                "run_pipeline(range(300), stages, workers=2, maxsize=2), whose stage 2 raises on every item from 5 "
                f"on, did not return within 5 s (stage 2 had raised {len(raised)} times). After an error each "
                "worker must go on taking items off its queue (and drop them) until its sentinel comes: a worker "
                "that stops at its first error leaves the stage before it blocked on a full queue.\n"
                + stuck_report([job])
            )
    expect(
        any(job.error is error for error in raised.events),
        f"Stage 2 raised ValueError on every item from 5 on; run_pipeline should re-raise the first of them, but it "
        f"{'raised ' + shown(job.error) if job.error else 'returned ' + shown(job.value)}.",
    )


def test_the_first_exception_of_a_stage_is_the_one_reraised(pipeline):
    def fails_from_five(x):
        if x >= 5:
            raise ValueError(f"item {x}")
        return x

    with no_new_threads("run_pipeline"):
        job = start(pipeline.run_pipeline, range(40), [abs, fails_from_five, abs], 1, 2).finished(within=8)
    expect(
        isinstance(job.error, ValueError) and str(job.error) == "item 5",
        "With workers=1, stage 2 raised ValueError('item 5') first, then (if it was called again) on the items "
        "after it. run_pipeline should re-raise that first exception, but it "
        f"{'raised ' + shown(job.error) if job.error else 'returned'}: keep the first error, not the last.",
    )


# ------------------------------------------------------------------ TaskRunner


def test_task_runner_runs_tasks_on_its_workers_at_once(pipeline):
    meeting = Rendezvous(3)
    names = EventLog()
    with no_new_threads("TaskRunner then shutdown()"):
        runner = call(pipeline.TaskRunner, 3)
        for _ in range(6):
            runner.submit(lambda: (names.add(threading.current_thread().name), meeting.arrive()))
        call(runner.join, within=8)
        call(runner.shutdown)
    expect(meeting.max_together == 3, f"TaskRunner(3) should run 3 tasks at once; at most {meeting.max_together} did.")
    expect(len(set(names.events)) == 3, f"The tasks ran in {len(set(names.events))} threads, expected the 3 workers.")


def test_join_waits_for_every_submitted_task(pipeline):
    gate = threading.Event()
    log = EventLog()
    runner = call(pipeline.TaskRunner, 2)
    runner.submit(lambda: (gate.wait(5), log.add("slow")))
    for i in range(5):
        runner.submit(log.add, i)
    joining = blocks(runner.join, what="join() while a task is still running")
    gate.set()
    joining.result()
    expect(
        sorted(map(str, log.events)) == ["0", "1", "2", "3", "4", "slow"],
        f"join() returned before every task had run; done: {log.events}.",
    )
    call(runner.shutdown)


def test_a_failing_task_neither_kills_its_worker_nor_hangs_join(pipeline):
    runner = call(pipeline.TaskRunner, 1)
    log = EventLog()
    runner.submit(lambda: 1 / 0)
    runner.submit(log.add, "after")
    job = start(runner.join, what="join() after a task that raised")
    if not job.wait(3):
        if log.events == ["after"]:
            fail(
                "TaskRunner(1) ran a task that raised ZeroDivisionError, then the next task, but join() did not "
                "return within 3 s: the task that raised was never marked done. Call task_done() in a `finally:` "
                "block, so that a task that raises counts as finished too."
            )
        fail(
            "TaskRunner(1) ran a task that raised ZeroDivisionError; then its only worker did not run the next task "
            "and join() did not return within 3 s: a failing task must not stop its worker. Catch the exception "
            "inside the worker's loop, add it to errors, and go on with the next task."
        )
    expect(job.error is None, f"join() raised {shown(job.error)}.")
    expect(log.events == ["after"], "After a task raised, the (only) worker should go on with the next task.")
    expect(
        len(runner.errors) == 1 and isinstance(runner.errors[0], ZeroDivisionError),
        f"runner.errors should hold the ZeroDivisionError of the failing task, it holds {shown(runner.errors)}.",
    )
    runner.submit(log.add, "later")
    call(runner.join)
    expect(log.events == ["after", "later"], "The worker should still run tasks submitted later.")
    call(runner.shutdown)


def test_many_failing_tasks_on_several_workers(pipeline):
    gate = threading.Event()
    log = EventLog()

    def failing(i):
        raise ValueError(i)

    with no_new_threads("TaskRunner then shutdown()"):
        runner = call(pipeline.TaskRunner, 3)
        runner.submit(gate.wait, 5)
        for i in range(12):
            runner.submit(failing, i)
            runner.submit(log.add, i)
        joining = blocks(runner.join, what="join(), while one task was still running and 12 others had raised")
        gate.set()
        if not joining.wait(3):
            fail(
                f"TaskRunner(3) ran 25 tasks, 12 of which raised; join() did not return within 3 s of the last "
                f"task's end ({len(log)} of the 12 tasks that do not raise had run). Every task that raises must "
                "still be marked done (task_done() in a `finally:` block), and its worker must go on.\n"
                + stuck_report([joining])
            )
        expect(
            sorted(log.events) == list(range(12)),
            f"join() returned, but only {len(log)} of the 12 tasks that do not raise had run: after a task raises, "
            "its worker must go on with the next one.",
        )
        errors = list(runner.errors)
        expect(
            sorted(e.args[0] for e in errors if isinstance(e, ValueError) and e.args) == list(range(12))
            and len(errors) == 12,
            f"12 tasks raised ValueError(0) .. ValueError(11); runner.errors should hold those 12 exceptions, it "
            f"holds {len(errors)}: {shown(errors)}.",
        )
        call(runner.shutdown)


def test_shutdown_finishes_queued_tasks_stops_every_worker_and_can_be_repeated(pipeline):
    gate = threading.Event()
    log = EventLog()
    with no_new_threads("TaskRunner then shutdown()"):
        runner = call(pipeline.TaskRunner, 4)
        for _ in range(4):
            runner.submit(gate.wait, 5)
        for i in range(20):
            runner.submit(log.add, i)
        stopping = blocks(runner.shutdown, what="shutdown(), while its 4 workers were busy and 20 tasks queued")
        gate.set()
        stopping.result()
        expect(
            sorted(log.events) == list(range(20)),
            f"shutdown() returned after only {len(log)} of the 20 queued tasks had run: it should let the workers "
            "finish the queued tasks before they stop (put each sentinel behind them).",
        )
        call(runner.shutdown, what="a second shutdown()")
