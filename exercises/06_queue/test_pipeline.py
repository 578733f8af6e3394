"""Public tests for topic 06. Run them with:  pytest exercises/06_queue

The hidden graders also check back-pressure (a slow stage must hold the others back),
that each stage really runs `workers` threads at once, and that no thread is left over.
"""

import threading

from conclab.testing import EventLog, call, expect


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
    call(runner.join)
    expect(len(runner.errors) == 1, "runner.errors should hold the exception of the failing task.")
    done = threading.Event()
    runner.submit(done.set)
    call(runner.join)
    expect(done.is_set(), "The worker should keep running tasks after one failed.")
    call(runner.shutdown)
