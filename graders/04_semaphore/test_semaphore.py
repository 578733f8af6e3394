"""Graders for topic 04: semaphore.py.  The Semaphore must behave exactly like
threading.Semaphore; each test states one rule of it."""

import ast
import threading
from time import monotonic

import pytest

from conclab.kit.vocabulary import wake_in_vain, woken_in_vain_until_the_timeout
from conclab.testing import (
    BLOCK,
    EventLog,
    Overlap,
    Rendezvous,
    blocks,
    call,
    expect,
    fail,
    no_new_threads,
    raises,
    run_threads,
    shown,
    start,
    wait_until,
)


def _uses_threading_semaphore(module) -> bool:
    """Whether the body of class Semaphore names threading's Semaphore or BoundedSemaphore
    (type annotations aside: `-> Semaphore` names the class itself)."""
    tree = ast.parse(open(module.__file__, encoding="utf-8").read())
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "Semaphore":
            annotations = {
                id(n)
                for f in ast.walk(node)
                if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                for a in [f.returns, *(arg.annotation for arg in ast.walk(f.args) if isinstance(arg, ast.arg))]
                if a is not None
                for n in ast.walk(a)
            }
            used = [n for n in ast.walk(node) if id(n) not in annotations]
            names = {n.attr for n in used if isinstance(n, ast.Attribute)}
            names |= {n.id for n in used if isinstance(n, ast.Name) and n.id != node.name}
            return bool(names & {"Semaphore", "BoundedSemaphore"}) or any(
                isinstance(b, ast.Attribute) and b.attr in ("Semaphore", "BoundedSemaphore") for b in node.bases
            )
    return False


def _holds_a_threading_semaphore(obj) -> bool:
    """Whether obj is, or keeps in its attributes (or in a list, tuple, set or dict there),
    a threading.Semaphore or BoundedSemaphore."""
    if isinstance(obj, threading.Semaphore):
        return True
    for value in getattr(obj, "__dict__", {}).values():
        inner = [*value.keys(), *value.values()] if isinstance(value, dict) else [value]
        if isinstance(value, (list, tuple, set, frozenset)):
            inner = list(value)
        if any(isinstance(v, threading.Semaphore) for v in inner):
            return True
    return False


def outcome(job):
    return f"raised {shown(job.error)}" if job.error else f"returned {shown(job.value)}"


def test_negative_value_is_refused(semaphore):
    with raises(ValueError, "Semaphore(-1) should raise ValueError (a semaphore cannot start below 0)"):
        semaphore.Semaphore(-1)


def test_non_blocking_acquire_takes_the_free_permits_then_fails_at_once(semaphore):
    expect(
        not _uses_threading_semaphore(semaphore),
        "class Semaphore uses threading.Semaphore or BoundedSemaphore: build it from threading.Condition.",
    )
    sem = semaphore.Semaphore(2)
    expect(
        not _holds_a_threading_semaphore(sem),
        "Your Semaphore keeps a threading.Semaphore (or BoundedSemaphore) inside: build it from threading.Condition.",
    )
    got = [call(sem.acquire, False, what="acquire(blocking=False)", within=1) for _ in range(3)]
    expect(
        got == [True, True, False],
        f"Three acquire(blocking=False) on Semaphore(2) should return "
        f"[True, True, False], they returned {got}. Without blocking, acquire never waits.",
    )
    sem.release()
    expect(call(sem.acquire, False, within=1) is True, "After a release, acquire(blocking=False) should return True.")


def test_default_value_is_one(semaphore):
    sem = semaphore.Semaphore()
    expect(call(sem.acquire, blocking=False, within=1) is True, "Semaphore() starts with one permit.")
    expect(call(sem.acquire, blocking=False, within=1) is False, "Semaphore() has only one permit.")


def test_blocking_acquire_waits_for_a_release_from_another_thread(semaphore):
    sem = semaphore.Semaphore(0)
    waiting = blocks(sem.acquire, what="acquire() on Semaphore(0)")
    start(sem.release).result()
    expect(
        waiting.result() is True,
        f"acquire() should return True once it got a permit, it returned {shown(waiting.value)}.",
    )


def test_acquire_with_timeout_returns_false_when_the_time_is_up(semaphore):
    sem = semaphore.Semaphore(0)
    job = start(sem.acquire, timeout=0.4, what="acquire(timeout=0.4) on Semaphore(0)")
    value = job.result()
    expect(value is False, f"acquire(timeout=0.4) with no permit should return False, it returned {shown(value)}.")
    expect(job.duration >= 0.35, f"acquire(timeout=0.4) gave up after {job.duration:.2f} s, before the timeout.")
    expect(call(sem.acquire, False, within=1) is False, "A timed-out acquire must not leave a permit behind.")


def test_acquire_with_timeout_returns_true_when_released_in_time(semaphore):
    sem = semaphore.Semaphore(0)
    job = blocks(sem.acquire, timeout=5, what="acquire(timeout=5) on Semaphore(0)")
    sem.release()
    expect(job.result() is True, "acquire(timeout=5) should return True when a permit is released in time.")
    expect(job.duration < 3, f"acquire returned {job.duration:.1f} s after the release instead of right away.")


# Without forced switches: the grader's release-then-acquire must run back to back, so that
# the woken acquire() really finds the permit gone.
@pytest.mark.no_chaos
def test_a_woken_acquire_that_finds_no_permit_waits_again(semaphore):
    sem = semaphore.Semaphore(0)

    def release_and_take_back():
        sem.release()  # wakes the waiting acquire()...
        return sem.acquire(blocking=False)  # ...but this thread takes the permit first (False: it was quicker)

    waiter, ended = wake_in_vain(sem.acquire, release_and_take_back, sem.release, "acquire() on Semaphore(0)")
    expect(
        not ended,
        "A release() woke up a waiting acquire(), but another thread took the permit before the woken acquire() ran. "
        f"No permit was left, yet the woken acquire() {outcome(waiter)} instead of waiting again. After wait() "
        "returns, check the count again: wait in a `while` loop, not an `if`.",
    )
    expect(waiter.result() is True, f"The waiting acquire() {outcome(waiter)}; it should return True.")
    expect(
        call(sem.acquire, False, within=1) is False,
        "Every permit released had been taken, but acquire(blocking=False) still found one free.",
    )


@pytest.mark.no_chaos
def test_acquire_timeout_counts_from_the_call_not_from_each_wakeup(semaphore):
    sem = semaphore.Semaphore(0)

    def release_and_take_back():
        sem.release()  # wakes the waiting acquire...
        return sem.acquire(blocking=False)  # ...but this thread takes the permit back first

    job, wakes = woken_in_vain_until_the_timeout(
        lambda: start(sem.acquire, timeout=1.0, what="acquire(timeout=1.0) on Semaphore(0)"),
        release_and_take_back,
        within=4.0,
    )
    if job.running:
        sem.release()  # let it end
        fail(
            f"acquire(timeout=1.0) was still waiting {monotonic() - job.started_at:.1f} s after it was called, 4 times "
            f"its timeout. It had been woken {wakes} times, and each time another thread took the permit before it "
            "ran. After such a wake-up it must go on waiting only for the time that is left of its timeout, not start "
            "the whole timeout again: compute a deadline once (time.monotonic() + timeout) and pass the time that "
            "remains to wait()."
        )
    expect(job.error is None, f"acquire(timeout=1.0) {outcome(job)}.")
    if job.value is False:
        expect(
            job.duration >= 0.95,
            f"acquire(timeout=1.0) returned False after {job.duration:.2f} s, before its timeout. It was woken up, but "
            "another thread had taken the permit first; then it should keep waiting for the time that is left (a "
            "while loop around wait(), with a deadline), not give up.",
        )
    else:
        expect(job.value is True, f"acquire(timeout=1.0) {outcome(job)}; expected True or False.")


def test_any_thread_may_release_in_any_order(semaphore):
    sem = semaphore.Semaphore(0)
    call(sem.release, 2, what="release(2) on Semaphore(0), before any acquire")
    got = [call(sem.acquire, False, within=1, what="acquire(blocking=False)") for _ in range(3)]
    expect(
        got == [True, True, False],
        "release(2) on Semaphore(0), before any acquire, should add 2 permits (a semaphore has no owner and no upper "
        f"limit): three acquire(blocking=False) should return [True, True, False], they returned {got}.",
    )
    start(sem.release, what="release() from another thread").result()
    expect(
        call(sem.acquire, False, within=1) is True,
        "A release() from another thread should add a permit that this thread can take.",
    )


def test_timeout_with_non_blocking_is_refused(semaphore):
    sem = semaphore.Semaphore(1)
    with raises(
        ValueError,
        "acquire(blocking=False, timeout=1.0) should raise ValueError (a timeout makes no sense without blocking)",
    ):
        call(sem.acquire, False, 1.0, within=1)
    expect(call(sem.acquire, False, within=1) is True, "The refused call must not take the permit.")


def test_release_n_wakes_n_waiters(semaphore):
    sem = semaphore.Semaphore(0)
    waiters = [start(sem.acquire, what=f"acquire() #{i}") for i in range(5)]
    threading.Event().wait(BLOCK)
    sem.release(3)
    wait_until(lambda: sum(not w.running for w in waiters) >= 3, what="3 of 5 waiting acquire() calls returning")
    threading.Event().wait(BLOCK)
    done = sum(not w.running for w in waiters)
    expect(done == 3, f"release(3) should let exactly 3 of the 5 waiting threads through; {done} got through.")
    sem.release(2)
    for waiter in waiters:
        expect(waiter.result() is True, "Every waiting acquire() should have returned True.")


def test_release_of_less_than_one_is_refused(semaphore):
    sem = semaphore.Semaphore(0)
    for n in (0, -1):
        with raises(ValueError, f"release({n}) should raise ValueError (release adds at least one permit)"):
            call(sem.release, n)
    expect(call(sem.acquire, False, within=1) is False, "A refused release must not add permits.")


def test_context_manager_takes_and_gives_back_a_permit(semaphore):
    sem = semaphore.Semaphore(1)
    with sem:
        expect(call(sem.acquire, False, within=1) is False, "Inside `with sem:` the only permit is taken.")
    with raises(KeyError, "`with sem:` should let an exception raised inside it through"):
        with sem:
            raise KeyError("inside")
    expect(
        call(sem.acquire, False, within=1) is True, "Leaving `with sem:` (even by an exception) gives the permit back."
    )


def test_many_threads_never_exceed_the_permits(semaphore):
    sem = semaphore.Semaphore(2)
    inside = Overlap(hold=0.001)

    def worker(i):
        for _ in range(40):
            sem.acquire()
            try:
                with inside:
                    pass
            finally:
                sem.release()

    run_threads(8, worker, within=8)
    expect(inside.entries == 320, f"Every acquire should eventually succeed ({inside.entries} of 320 did).")
    expect(
        inside.max <= 2,
        f"Semaphore(2) let {inside.max} threads in at once. A woken thread must check the count "
        "again before taking a permit: wait in a `while` loop, not an `if`.",
    )
    expect(
        call(sem.acquire, False, within=1)
        and call(sem.acquire, False, within=1)
        and not call(sem.acquire, False, within=1),
        "After everything, the semaphore should have 2 permits again.",
    )


# ------------------------------------------------------------------ bounded_map


def test_bounded_map_runs_limit_calls_at_once_and_never_more(semaphore):
    meeting = Rendezvous(3)
    inside = Overlap(hold=0.02)
    threads = EventLog()

    def func(x):
        threads.add(threading.current_thread().name)
        with inside:
            meeting.arrive()
        return x * x

    with no_new_threads("bounded_map"):
        result = call(semaphore.bounded_map, func, range(9), 3, within=8)
    expect(
        meeting.max_together == 3,
        f"With limit 3, three calls should run at the same time; at most {meeting.max_together} did.",
    )
    expect(inside.max <= 3, f"With limit 3, {inside.max} calls ran at the same time.")
    expect(
        len(set(threads.events)) == 9,
        f"bounded_map should use one thread per item (9), it used {len(set(threads.events))}.",
    )
    expect(
        result == [x * x for x in range(9)], f"bounded_map returned {result}, expected the squares of 0..8 in order."
    )


@pytest.mark.parametrize("limit", [1, 4])
def test_bounded_map_limit_is_respected(semaphore, limit):
    inside = Overlap(hold=0.01)

    def func(x):
        with inside:
            threading.Event().wait(0.01 * (12 - x))  # later items finish sooner
            return -x

    result = call(semaphore.bounded_map, func, list(range(12)), limit, within=8)
    expect(inside.max <= limit, f"With limit {limit}, {inside.max} calls ran at the same time.")
    expect(result == [-x for x in range(12)], f"bounded_map returned {result}.")


def test_bounded_map_of_nothing(semaphore):
    expect(call(semaphore.bounded_map, abs, [], 2) == [], "bounded_map(func, [], 2) should return [].")


def test_bounded_map_reraises_the_first_failure_after_all_finished(semaphore):
    # The order is made by the calls themselves, not by the clock, so that it holds however
    # busy the machine is: item 3 fails first; item 1 fails once item 3's thread has ended;
    # item 5 finishes 2 s after item 1's thread has ended, or once the test has seen bounded_map return.
    finished, threads, looked = EventLog(), {}, threading.Event()

    def ended(x):
        deadline = monotonic() + 10
        while monotonic() < deadline and (x not in threads or threads[x].is_alive()):
            if threads.get(x) is threading.current_thread():
                return
            threading.Event().wait(0.005)

    def func(x):
        threads[x] = threading.current_thread()
        if x == 3:
            raise KeyError("three")
        if x == 1:  # first in input order, last in time
            ended(3)
            raise ValueError("one")
        if x == 5:  # still running when item 1 has failed: for 2 s, or until the test has looked
            ended(1)
            looked.wait(2)
        finished.add(x)
        return x

    with no_new_threads("bounded_map"):
        job = start(semaphore.bounded_map, func, range(6), 3)
        try:
            job.finished(within=20)
            done = sorted(finished.events)
        finally:
            looked.set()
    expect(
        isinstance(job.error, ValueError),
        f"Item 3 raised KeyError first and item 1 ValueError after it: bounded_map should raise the first in "
        f"input order, ValueError; it {'raised ' + shown(job.error) if job.error else 'returned'}.",
    )
    expect(done == [0, 2, 4, 5], "bounded_map raised before every other call had finished.")
