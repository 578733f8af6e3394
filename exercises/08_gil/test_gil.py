"""Public tests for topic 08. Run them with:  pytest exercises/08_gil

The hidden graders also check that `workers` fetches really wait at the same time, that
count_primes computes in several worker processes, and that it is faster with two of
them on a machine with two cores.
"""

import time

import pytest

from conclab.testing import ChildWork, Overlap, call, expect


def test_fetch_all(gil):
    in_flight = Overlap(hold=0.05)

    def fetch(url):
        with in_flight:
            return len(url)

    result = call(gil.fetch_all, ["a", "bb", "ccc", "dddd"], fetch, 2)
    expect(result == [1, 2, 3, 4], f"fetch_all should return [1, 2, 3, 4], got {result}.")
    expect(in_flight.max == 2, f"With workers=2, 2 fetches should run at the same time; at most {in_flight.max} did.")


@pytest.mark.no_chaos  # the work runs in worker processes: forced thread switches do not apply
def test_count_primes(gil):
    with ChildWork() as work:  # enough work for the workers to be seen computing
        result = call(gil.count_primes, [10, 100, 1000, 30_000], 2, within=20)
    expect(result == [4, 25, 168, 3245], f"count_primes([10, 100, 1000, 30000]) should be [4, 25, 168, 3245], "
           f"got {result}.")
    expect(work.cpu_by_pid, "count_primes should compute in worker processes (multiprocessing.Pool).")


def test_classify(gil):
    expect(call(gil.classify, lambda: time.sleep(0.2)) == "io", "Sleeping is waiting: classify should say \"io\".")
