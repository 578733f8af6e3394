"""Public tests for topic 04. Run them with:  pytest exercises/04_semaphore

The hidden graders compare your Semaphore with every rule of threading.Semaphore
(timeouts, non-blocking calls, release(n)) and count how many bounded_map calls overlap.
"""

import pytest

from conclab.testing import Overlap, blocks, call, expect, raises


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
