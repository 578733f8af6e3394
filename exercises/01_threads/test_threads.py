"""Public tests for topic 01. Run them with:  pytest exercises/01_threads

The hidden graders check more (that the functions really run at the same time, which
exception is re-raised, ...): passing these is a good start, not the end.
"""

import threading

from conclab.testing import EventLog, Rendezvous, Timeline, call, expect


def test_square_worker(threads):
    worker = threads.SquareWorker(6)
    expect(worker.result is None, "result must be None before the thread has run.")
    worker.start()
    worker.join(3)
    expect(worker.result == 36, f"SquareWorker(6).result should be 36 after join(), got {worker.result!r}.")


def test_run_all_returns_results_in_input_order(threads):
    result = call(threads.run_all, [lambda: "a", lambda: "b", lambda: "c"])
    expect(result == ["a", "b", "c"], f"run_all should return ['a', 'b', 'c'], got {result!r}.")


def test_run_all_uses_threads(threads):
    log = EventLog()
    call(threads.run_all, [lambda: log.add(threading.current_thread().name) for _ in range(3)])
    expect(len(set(log.events)) == 3, f"The 3 functions should run in 3 different threads, they ran in: {log.events}.")


def test_run_all_runs_the_functions_at_the_same_time(threads):
    meeting, timeline = Rendezvous(3, within=1.0), Timeline()  # opens only when all 3 are there at once

    def meet():
        with timeline.span():
            meeting.arrive()

    call(threads.run_all, [meet, meet, meet])
    expect(meeting.max_together == 3, f"The 3 functions should run at the same time; at most "
           f"{meeting.max_together} ran together. Start every thread before you join any.\n"
           f"When each function ran, one row per thread:\n{timeline.picture()}")


def test_run_all_reraises(threads):
    def boom():
        raise ValueError("boom")

    try:
        call(threads.run_all, [lambda: 1, boom])
    except ValueError:
        return
    expect(False, "run_all should re-raise the ValueError raised by one of the functions.")


def test_start_daemon(threads):
    done = threading.Event()
    thread = call(threads.start_daemon, done.set)
    expect(thread.daemon, "start_daemon must start a daemon thread.")
    expect(done.wait(3), "The target never ran: did you start the thread?")
