"""Public tests for topic 04. Run them with:  pytest exercises/04_semaphore

The hidden graders compare your Semaphore with every rule of threading.Semaphore
(timeouts, non-blocking calls, release(n)) and count how many bounded_map calls overlap.
"""

import pytest

from conclab.kit.vocabulary import wake_in_vain
from conclab.testing import Overlap, blocks, call, expect, raises, shown


def test_acquire_and_release(semaphore):
    sem = semaphore.Semaphore(1)
    expect(call(sem.acquire) is True, "acquire() on a free semaphore should return True.")
    expect(call(sem.acquire, blocking=False) is False, "acquire(blocking=False) with no permit should return False.")
    sem.release()
    expect(call(sem.acquire, blocking=False) is True, "After release(), a permit should be free again.")


def test_acquire_waits_for_release(semaphore):
    sem = semaphore.Semaphore(0)
    waiting = blocks(sem.acquire, what="acquire() on Semaphore(0)")
    call(sem.release)
    expect(waiting.result() is True, "The waiting acquire() should return True after release().")


def test_timeout(semaphore):
    sem = semaphore.Semaphore(0)
    expect(call(sem.acquire, timeout=0.2) is False, "acquire(timeout=0.2) with no permit should return False.")


def test_bad_values(semaphore):
    with raises(ValueError, "Semaphore(-1) should raise ValueError (a semaphore cannot start below 0)"):
        semaphore.Semaphore(-1)


def test_bounded_map(semaphore):
    inside = Overlap(hold=0.02)

    def double(x):
        with inside:
            return 2 * x

    result = call(semaphore.bounded_map, double, [1, 2, 3, 4, 5], 2, within=8)
    expect(result == [2, 4, 6, 8, 10], f"bounded_map should return [2, 4, 6, 8, 10], got {result}.")
    expect(inside.max <= 2, f"With limit 2, {inside.max} calls ran at the same time.")


# Without forced switches: the test's release-then-acquire must run back to back.
@pytest.mark.no_chaos
def test_a_woken_acquire_waits_again_when_the_permit_is_gone(semaphore):
    sem = semaphore.Semaphore(0)

    def release_and_take_back():
        sem.release()  # wakes the waiting acquire()...
        return sem.acquire(blocking=False)  # ...but this thread takes the permit first

    waiter, ended = wake_in_vain(sem.acquire, release_and_take_back, sem.release, "acquire()", settle=0.1)
    outcome = f"raised {shown(waiter.error)}" if waiter.error else f"returned {shown(waiter.value)}"
    expect(
        not ended,
        "A release() woke up a waiting acquire(), but another thread took the permit before the woken acquire() ran. "
        f"No permit was left, yet the woken acquire() {outcome} instead of waiting again. After wait() returns, "
        "check the count again: wait in a `while` loop, not an `if`.",
    )
    expect(waiter.error is None and waiter.value is True, f"The waiting acquire() {outcome}; expected True.")
