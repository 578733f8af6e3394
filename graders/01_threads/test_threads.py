"""Graders for topic 01: threads.py."""

import threading

import pytest

from conclab.testing import (
    EventLog,
    Rendezvous,
    Timeline,
    blocks,
    call,
    expect,
    no_new_threads,
    shown,
    start,
    wait_until,
)

#: The ways of squaring an int that go through the int itself: n * n, n ** 2, pow(n, 2),
#: math.prod((n, n)), sum(n for ...).  (int(n) * int(n), abs(n) ** 2 and the like compute on a
#: plain int, which no grader can watch: they are judged by the result alone.)
ARITHMETIC = ("__mul__", "__rmul__", "__pow__", "__rpow__", "__add__", "__radd__")


def watched_int(n, seen):
    """An int equal to n whose arithmetic calls seen() first, in the thread that computes."""

    def hook(name):
        def method(self, *args):
            seen()
            return getattr(int, name)(int(self), *(int(a) if isinstance(a, int) else a for a in args))

        method.__name__ = name
        return method

    return type("WatchedInt", (int,), {name: hook(name) for name in ARITHMETIC})(n)


# ------------------------------------------------------------------ SquareWorker


def test_square_worker_computes_in_the_new_thread(threads):
    log = EventLog()
    n = watched_int(7, lambda: log.add(threading.current_thread()))
    worker = threads.SquareWorker(n)
    expect(isinstance(worker, threading.Thread), "SquareWorker must be a subclass of threading.Thread.")
    expect(
        worker.result is None,
        f"Right after SquareWorker(7), before start(), result was already {shown(worker.result)}: it must be "
        "None until run() has finished. Do the work in run(), not in __init__().",
    )
    expect(
        len(log) == 0,
        "SquareWorker(7) already computed with n before start() was called (in "
        f"{', '.join(sorted({t.name for t in log.events}))}). Do the work in run(), not in __init__().",
    )
    worker.start()
    worker.join(3)
    expect(not worker.is_alive(), "The SquareWorker thread was still running 3 s after start().")
    expect(
        worker.result == 49, f"After run() finished, result should be 49 for n = 7, but it is {shown(worker.result)}."
    )
    elsewhere = sorted({t.name for t in log.events if t is not worker})
    expect(
        not elsewhere,
        f"n * n was computed in {', '.join(elsewhere)}, not in the SquareWorker's own thread "
        f"({worker.name}). run() runs in the new thread: compute there, not in start() or in the caller.",
    )


def test_square_worker_result_is_none_until_run_finishes(threads):
    # run() is held back twice, in ways every correct SquareWorker goes through: before it
    # starts (a subclass whose run() waits, then calls the student's run()), and in the
    # middle of its arithmetic on n, when it computes on n itself.
    expect(issubclass(threads.SquareWorker, threading.Thread), "SquareWorker must be a subclass of threading.Thread.")
    may_run, ran_in = threading.Event(), EventLog()
    in_arithmetic, may_compute = threading.Event(), threading.Event()
    worker = None

    def computing():
        if threading.current_thread() is worker and not may_compute.is_set():
            in_arithmetic.set()
            may_compute.wait(5)

    class HeldBack(threads.SquareWorker):
        def run(self):
            ran_in.add(threading.current_thread())
            may_run.wait(5)
            super().run()

    worker = HeldBack(watched_int(5, computing))
    try:
        starting = start(worker.start, what="start() of a SquareWorker(5)")
        expect(
            starting.wait(3) and starting.error is None,
            "start() of a SquareWorker should return as soon as the thread has started, but it "
            + (f"raised {shown(starting.error)}." if starting.error else "was still running after 3 s.")
            + " Leave start() to threading.Thread; put the work in run().",
        )
        wait_until(lambda: len(ran_in), what="run() being called in the started SquareWorker")
        expect(
            ran_in.events == [worker],
            f"run() was called in {ran_in.events[0].name}, not in the SquareWorker's own thread.",
        )
        expect(
            worker.result is None,
            f"The SquareWorker had started, but its run() had not begun yet, and result was already "
            f"{shown(worker.result)}. result must stay None until run() has finished: compute in run(), "
            "not in __init__() or start().",
        )
        may_run.set()
        wait_until(lambda: in_arithmetic.is_set() or not worker.is_alive(), what="run() computing n * n")
        if in_arithmetic.is_set():
            expect(
                worker.result is None,
                f"While run() was still computing 5 * 5, result was already {shown(worker.result)}. result must "
                "stay None until run() has finished: compute the square first, then store it.",
            )
    finally:
        may_run.set()
        may_compute.set()
        worker.join(3)
    expect(not worker.is_alive(), "The SquareWorker thread was still running 3 s after run() could go on.")
    expect(worker.result == 25, f"result should be 25 for n = 5, but it is {shown(worker.result)}.")


@pytest.mark.parametrize("n", [0, 1, -4, 12345])
def test_square_worker_values(threads, n):
    worker = threads.SquareWorker(n)
    worker.start()
    worker.join(3)
    expect(worker.result == n * n, f"SquareWorker({n}).result should be {n * n}, but it is {shown(worker.result)}.")


# ------------------------------------------------------------------ run_all


def test_run_all_runs_the_functions_at_the_same_time(threads):
    meeting, timeline = Rendezvous(5), Timeline()

    def func(i):
        def meet():
            with timeline.span():
                meeting.arrive()
            return i

        return meet

    with no_new_threads("run_all"):
        result = call(threads.run_all, [func(i) for i in range(5)], within=8)
    expect(
        meeting.max_together == 5,
        f"run_all should run all 5 functions at the same time, but at most {meeting.max_together} of them "
        "were running together. Start every thread first, and only then join them.\n"
        f"When each function ran, one row per thread:\n{timeline.picture()}",
    )
    expect(result == [0, 1, 2, 3, 4], f"run_all returned {shown(result)}, expected [0, 1, 2, 3, 4].")


def test_run_all_runs_each_function_in_its_own_new_thread(threads):
    log = EventLog()
    caller = start(threads.run_all, [lambda: log.add(threading.current_thread()) for _ in range(4)])
    caller.result()
    who = set(log.events)
    expect(
        caller.thread not in who, "run_all called the functions in the calling thread; each must run in a new thread."
    )
    expect(len(who) == 4, f"The 4 functions ran in {len(who)} thread(s); run_all must give each its own thread.")


def test_run_all_returns_results_in_input_order_not_completion_order(threads):
    n = 5
    finished = [threading.Event() for _ in range(n)]
    order = EventLog()

    def func(i):
        def body():
            if i + 1 < n:
                finished[i + 1].wait(3)  # each function ends after the next one
            order.add(i)
            finished[i].set()
            return f"result {i}"

        return body

    result = call(threads.run_all, [func(i) for i in range(n)], within=8)
    expect(
        order.events == [4, 3, 2, 1, 0],
        "The functions should have finished last-to-first in this test; "
        f"they finished in the order {order.events}. Are they running at the same time?",
    )
    expected = [f"result {i}" for i in range(n)]
    expect(
        result == expected,
        f"run_all should return the results in input order:\n  expected {expected}\n"
        f"  got      {result}\nStore each result at its function's index, not in the order they finish.",
    )


def test_run_all_of_nothing_is_an_empty_list(threads):
    expect(call(threads.run_all, []) == [], "run_all([]) should return [].")


def test_run_all_reraises_an_exception_from_a_thread(threads):
    def boom():
        raise ValueError("boom")

    job = start(threads.run_all, [lambda: 1, boom, lambda: 3])
    job.finished()
    expect(
        isinstance(job.error, ValueError),
        "One of the functions raised ValueError('boom'); run_all should raise it in the caller, "
        f"but it {'raised ' + shown(job.error) if job.error else 'returned ' + shown(job.value)}.",
    )


def test_run_all_reraises_the_first_failure_in_input_order(threads):
    second_may_fail = threading.Event()

    def first_to_fail_in_time():
        second_may_fail.set()
        raise KeyError("fails first, but is third in the list")

    def first_in_input_order():
        second_may_fail.wait(3)
        threading.Event().wait(0.3)  # let the other failure be recorded first
        raise ValueError("first in the list")

    job = start(threads.run_all, [lambda: 0, first_in_input_order, first_to_fail_in_time])
    job.finished()
    expect(
        isinstance(job.error, ValueError),
        "Two functions raised: function 1 (ValueError) and function 2 (KeyError, which happened first in time). "
        f"run_all must raise the one that comes first in the list, ValueError, but it raised {shown(job.error)}.",
    )


def test_run_all_raises_only_after_every_thread_finished(threads):
    gate = threading.Event()
    log = EventLog()

    def fails_at_once():
        raise RuntimeError("early failure")

    def slow():
        gate.wait(5)
        log.add("slow finished")
        return "slow"

    with no_new_threads("run_all"):
        job = blocks(
            threads.run_all, [fails_at_once, slow], what="run_all([a function that fails at once, a slow function])"
        )
        gate.set()
        job.finished()
    expect(
        isinstance(job.error, RuntimeError),
        "One function raised RuntimeError: run_all should raise it, but it "
        f"{'raised ' + shown(job.error) if job.error else 'returned ' + shown(job.value)}.",
    )
    expect(log.events == ["slow finished"], "run_all raised before the slow function had finished.")


def test_run_all_leaves_no_thread_running(threads):
    gate, started = threading.Event(), EventLog()

    def func(i):
        def body():
            started.add(i)
            gate.wait(5)  # each function runs until the test lets it finish
            return i * 10

        return body

    with no_new_threads("run_all"):
        job = start(threads.run_all, [func(i) for i in range(8)], what="run_all(8 functions that wait)")
        wait_until(lambda: len(started) == 8 or not job.running, what="the 8 functions starting")
        returned_early = job.wait(0.5)
        gate.set()
        expect(
            not returned_early,
            f"run_all {'raised ' + shown(job.error) if job.error else 'returned ' + shown(job.value)} while its "
            f"{8 - len(started) if len(started) < 8 else 8} functions were still running. Join every thread you "
            "start (join() without a timeout) before returning.",
        )
        result = job.result()
    expect(result == [i * 10 for i in range(8)], f"run_all returned {shown(result)}.")


# ------------------------------------------------------------------ start_daemon


def test_start_daemon_returns_a_started_daemon_thread(threads):
    gate = threading.Event()
    seen = EventLog()

    def target(a, b):
        seen.add(threading.current_thread(), a, b)
        gate.wait(5)

    caller = threading.current_thread()
    thread = call(threads.start_daemon, target, "x", 2)
    try:
        expect(
            isinstance(thread, threading.Thread),
            f"start_daemon should return the thread, but returned {shown(thread)}.",
        )
        expect(thread.daemon, "The thread start_daemon returned is not a daemon thread (daemon=True).")
        expect(thread.is_alive(), "The thread start_daemon returned is not running: call start() before returning it.")
    finally:
        gate.set()
    thread.join(3)
    expect(
        len(seen) == 1 and seen.events[0][1:] == ("x", 2),
        f"target should have been called once as target('x', 2); calls seen: {[e[1:] for e in seen.events]}.",
    )
    expect(
        seen.events[0][0] is thread and seen.events[0][0] is not caller,
        "target ran in another thread than the one start_daemon returned.",
    )
