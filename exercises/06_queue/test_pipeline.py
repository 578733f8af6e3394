"""Public tests for topic 06. Run them with:  pytest exercises/06_queue

The hidden graders also check back-pressure (a slow stage must hold the others back),
that each stage really runs `workers` threads at once, and that no thread is left over.
"""

import threading

from conclab.testing import EventLog, call, expect, fail, start


def test_pipeline(pipeline):
    result = call(pipeline.run_pipeline, range(10), [lambda x: x + 1, lambda x: x * 2], 2, 4)
    expect(result == [(x + 1) * 2 for x in range(10)], f"run_pipeline returned {result}.")


def test_pipeline_reraises(pipeline):
    def boom(x):
        raise ValueError(x)

    try:
        call(pipeline.run_pipeline, range(5), [boom])
    except ValueError:
        return
    expect(False, "run_pipeline should re-raise the ValueError raised by a stage.")


def test_task_runner(pipeline):
    log = EventLog()
    runner = call(pipeline.TaskRunner, 2)
    for i in range(5):
        runner.submit(log.add, i)
    call(runner.join)
    expect(sorted(log.events) == [0, 1, 2, 3, 4], f"After join() every task should have run; ran: {log.events}.")
    call(runner.shutdown)


def test_task_runner_survives_a_failing_task(pipeline):
    runner = call(pipeline.TaskRunner, 1)
    runner.submit(lambda: 1 / 0)
    done = threading.Event()
    runner.submit(done.set)
    job = start(runner.join, what="join() after a task that raised")
    if not job.wait(2):
        if done.is_set():
            fail(
                "A task raised ZeroDivisionError and the next task ran, but join() did not return: the task that "
                "raised was never marked done. Call task_done() in a `finally:` block, so that a task that raises "
                "counts as finished too."
            )
        fail(
            "A task raised ZeroDivisionError, then the worker did not run the next task: a failing task must not "
            "stop its worker."
        )
    expect(len(runner.errors) == 1, "runner.errors should hold the exception of the failing task.")
    expect(done.is_set(), "The worker should keep running tasks after one failed.")
    call(runner.shutdown)
