"""Public tests for topic 13. Run them with:  pytest exercises/13_futures

The hidden graders also check that fetch_all has max_workers fetches in flight, that
first_success does not wait for slow functions, cancels those not started and keeps to its
timeout, and that parallel_map computes in worker processes, in chunks, faster with two.
"""

import time

import pytest

from conclab.testing import ChildWork, call, expect, no_pool_left, workers


def test_fetch_all(executors):
    def fetch(url):
        if url == "bad":
            raise ValueError("bad url")
        return len(url)

    result = call(executors.fetch_all, ["a", "bb", "bad"], fetch, within=5)
    expect(isinstance(result, dict) and result.get("a") == 1 and result.get("bb") == 2,
           f"fetch_all(['a', 'bb', 'bad'], fetch) should map 'a' to 1 and 'bb' to 2; got {result!r}.")
    expect(isinstance(result.get("bad"), ValueError), "fetch_all should map 'bad' to the ValueError its fetch raised.")


def test_first_success(executors):
    def slow():
        time.sleep(1.0)
        return "slow"

    def fast():
        return "fast"

    result = call(executors.first_success, [slow, fast], within=5)
    expect(result == "fast", f"first_success([slow, fast]) should return 'fast', the first result to arrive, not "
           f"the first of the list; got {result!r}.")


@pytest.mark.no_chaos  # the work runs in worker processes: forced thread switches do not apply
def test_parallel_map(executors):
    with no_pool_left("parallel_map(burn, ...)"), ChildWork() as work:
        result = call(executors.parallel_map, workers.burn, [2_000_000, 10, 3], within=20)
    expect(result == [workers.burn(2_000_000), 285, 5], f"parallel_map(burn, [2000000, 10, 3]) gave {result!r}.")
    expect(work.cpu_by_pid, "parallel_map started no worker process: use a ProcessPoolExecutor.")
