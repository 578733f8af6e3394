"""Graders for topic 13: executors.py."""

import concurrent.futures
import os
import threading
import time

import pytest

from conclab.testing import (
    ChildWork,
    EventLog,
    InFlight,
    Overlap,
    Rendezvous,
    call,
    expect,
    expect_speedup,
    fail,
    no_new_threads,
    no_pool_left,
    shown,
    wait_until,
    workers,
)

TIMEOUTS = (TimeoutError, concurrent.futures.TimeoutError)  # the same class from Python 3.11 on


# ------------------------------------------------------------------ fetch_all


def test_fetch_all_maps_every_url_to_its_result_or_its_exception(executors):
    errors = {f"http://example.test/{i}": KeyError(f"no page {i}") for i in (1, 4)}
    urls = [f"http://example.test/{i}" for i in range(6)]

    def fetch(url):
        time.sleep(0.03 * (len(urls) - urls.index(url)))  # the last url of the list is the first to finish
        if url in errors:
            raise errors[url]
        return url.upper()

    with no_new_threads("fetch_all"):
        try:
            result = call(executors.fetch_all, urls, fetch, within=5, what="fetch_all(6 urls, fetch)")
        except KeyError as error:
            fail(
                f"fetch_all let the exception of one fetch escape ({shown(error)}). Map that url to its exception "
                "(future.exception()) and go on with the others."
            )
    expected = {url: errors.get(url, url.upper()) for url in urls}
    expect(
        isinstance(result, dict) and set(result) == set(urls),
        f"fetch_all should return a dict with every url as a key; got {shown(result)}.",
    )
    wrong = [url for url in urls if result[url] is not expected[url] and result[url] != expected[url]]
    swapped = any(
        result[url] is expected[other] or result[url] == expected[other]
        for url in wrong
        for other in urls
        if other != url
    )
    expect(
        not wrong,
        f"fetch_all gave wrong values for {wrong}: a url maps to fetch(url), or to the very exception "
        f"fetch raised for it. Got {[result[url] for url in wrong]!r}."
        + (
            " Those are the values of other urls: the fetches finished in the reverse order of the list, so take "
            "each future's url from what you stored when you submitted it (a dict {future: url}), not from the "
            "position in which as_completed gives the future back."
            if swapped
            else ""
        ),
    )
    expect(call(executors.fetch_all, [], fetch) == {}, "fetch_all([], fetch) should return {}.")


@pytest.mark.parametrize("max_workers", [3, 8])
def test_fetch_all_has_max_workers_fetches_in_flight_and_never_more(executors, max_workers):
    fetch = InFlight(max_workers, len)
    urls = [f"http://example.test/{'x' * i}" for i in range(24)]
    args = (urls, fetch, max_workers) if max_workers != 8 else (urls, fetch)  # 8 is the default
    with no_new_threads("fetch_all"):
        result = call(
            executors.fetch_all, *args, within=8, what=f"fetch_all(24 urls, fetch, max_workers={max_workers})"
        )
    fetch.check(
        f"max_workers={max_workers}",
        "Submit every fetch to a ThreadPoolExecutor(max_workers=max_workers) before waiting for any.",
    )
    expect(result == {url: len(url) for url in urls}, "fetch_all should map each url to fetch(url).")


# ------------------------------------------------------------------ first_success


class Gate:
    """Functions for first_success that wait until the grader opens the gate, and a log
    of which of them started (and finished)."""

    def __init__(self):
        self.open = threading.Event()
        self.log = EventLog()

    def blocked(self, name, value=None):
        def func():
            self.log.add("started", name)
            self.open.wait(10)
            self.log.add("finished", name)
            return value

        func.__name__ = name
        return func

    def started(self):
        return [name for kind, name in self.log.events if kind == "started"]

    def release(self, what):
        self.open.set()
        wait_until(
            lambda: len([e for e in self.log.events if e[0] == "finished"]) == len(self.started()),
            within=5,
            what=f"the functions of {what} to finish",
        )


def test_first_success_returns_the_first_to_succeed_without_waiting_for_the_others(executors):
    gate = Gate()

    def fails_at_once():
        raise ValueError("this one fails")

    def succeeds_soon():
        time.sleep(0.05)
        return "soon"

    funcs = [gate.blocked("slow", "slow"), fails_at_once, succeeds_soon]
    what = "first_success([slow, fails_at_once, succeeds_soon])"
    try:
        result = call(
            executors.first_success,
            funcs,
            within=3,
            what=f"{what}, where `slow` only returns once first_success has returned,",
        )
    finally:
        gate.release(what)
    expect(
        result == "soon",
        f"{what} should return 'soon', the result of the first function to succeed (the order "
        f"in which they finish, not the order of the list); got {shown(result)}.",
    )
    wait_until(
        lambda: not [t for t in threading.enumerate() if t.name.startswith("ThreadPoolExecutor")],
        within=5,
        what="the executor's threads to end after the functions finished",
    )


def test_first_success_runs_four_functions_at_once_by_default(executors):
    meeting = Rendezvous(4, within=3)
    inside = Overlap(hold=0.01)

    def meets(i):
        def func():
            with inside:
                if not meeting.arrive():
                    raise RuntimeError(f"function {i} waited in vain for three others to run at the same time")
            if i == 0:
                time.sleep(0.3)  # the first of the list is the last of the four to finish
            return i

        return func

    what = "first_success(6 functions, each of which succeeds once 4 of them run at the same time)"
    try:
        result = call(executors.first_success, [meets(i) for i in range(6)], within=8, what=what)
    except RuntimeError as error:
        result = error
    expect(
        meeting.max_together == 4,
        f"With the default max_workers=4, {what} should run 4 functions at the same time, each in a thread of "
        f"the executor; at most {meeting.max_together} ran at once. Submit every function to a "
        "ThreadPoolExecutor(max_workers=max_workers) before waiting for any.",
    )
    expect(
        inside.max <= 4,
        f"With the default max_workers=4, {what} ran {inside.max} functions at once: never more than max_workers.",
    )
    expect(
        result in (1, 2, 3),
        f"{what} should return the result of the first function to finish: 1, 2 or 3 (function 0 finishes "
        f"0.3 s after the others); got {shown(result)}. Take the futures from as_completed(futures), in the order "
        "they finish.",
    )


def test_first_success_cancels_the_functions_that_have_not_started(executors):
    gate = Gate()
    winner_may_return = threading.Event()

    def wins():
        winner_may_return.wait(5)  # until the other worker is busy, so exactly two have started
        return "won"

    def holds_a_worker():
        winner_may_return.set()
        return gate.blocked("busy")()

    funcs = [wins, holds_a_worker] + [gate.blocked(f"queued {i}") for i in range(6)]
    what = "first_success([wins, busy, queued 0, ..., queued 5], max_workers=2)"
    try:
        result = call(
            executors.first_success,
            funcs,
            2,
            within=3,
            what=f"{what}, where busy and the queued functions only return once first_success has returned,",
        )
        expect(result == "won", f"{what} should return 'won', got {shown(result)}.")
    finally:
        gate.release(what)
    time.sleep(0.2)  # a queued function that was not cancelled would start now
    queued = [name for name in gate.started() if name.startswith("queued")]
    expect(
        len(queued) <= 1,
        f"After {what} returned, {len(queued)} of the queued functions still ran ({queued}). "
        "Cancel the futures that have not started (future.cancel(), or executor.shutdown(cancel_futures=True)) "
        "before returning; at most the one a worker took right away may start.",
    )


def test_first_success_gives_up_after_the_timeout(executors):
    gate = Gate()
    funcs = [gate.blocked(f"waits {i}") for i in range(3)]
    what = "first_success(3 functions that never succeed in time, timeout=0.3)"
    started = time.monotonic()
    try:
        try:
            result = call(executors.first_success, funcs, 4, 0.3, within=2.5, what=what)
        except TIMEOUTS:
            waited = time.monotonic() - started
        else:
            fail(
                f"{what} returned {shown(result)}; it should raise TimeoutError once 0.3 s have passed without a success."
            )
    finally:
        gate.release(what)
    expect(waited < 2.5, f"{what} raised TimeoutError only after {waited:.1f} s.")


def test_first_success_cancels_the_queued_functions_after_a_timeout(executors):
    gate = Gate()
    funcs = [gate.blocked("busy 0"), gate.blocked("busy 1")] + [gate.blocked(f"queued {i}") for i in range(4)]
    what = "first_success([busy 0, busy 1, queued 0, ..., queued 3], max_workers=2, timeout=0.3)"
    try:
        try:
            result = call(
                executors.first_success,
                funcs,
                2,
                0.3,
                within=2.5,
                what=f"{what}, where no function returns before first_success has returned,",
            )
        except TIMEOUTS:
            pass
        else:
            fail(
                f"{what} returned {shown(result)}; it should raise TimeoutError once 0.3 s have passed without a success."
            )
    finally:
        gate.release(what)
    time.sleep(0.2)  # a queued function that was not cancelled would start now
    queued = [name for name in gate.started() if name.startswith("queued")]
    expect(
        not queued,
        f"After {what} raised TimeoutError, {len(queued)} of the queued functions still ran ({queued}). A time-out "
        "ends first_success too: cancel the functions that have not started on every way out, not only when one "
        "succeeded (in a `finally:`, cancel the futures and call executor.shutdown(wait=False, cancel_futures=True)).",
    )


def test_first_success_reraises_the_last_failure_when_all_fail(executors):
    first_failed = threading.Event()

    def fails_first():
        first_failed.set()
        raise ValueError("failed first")

    def fails_last():
        first_failed.wait(5)
        time.sleep(0.05)
        raise ValueError("failed last")

    what = "first_success([fails_last, fails_first])"
    try:
        result = call(executors.first_success, [fails_last, fails_first], within=5, what=what)
    except ValueError as error:
        raised = str(error)
    else:
        fail(f"{what} returned {shown(result)}, but every function failed: raise the last failure.")
    expect(
        raised == "failed last",
        f"{what} raised ValueError({shown(raised)}); when every function fails, the last "
        "failure (in the order they finish) should reach the caller: ValueError('failed last').",
    )


# ------------------------------------------------------------------ parallel_map


@pytest.mark.no_chaos
@pytest.mark.parametrize("max_workers", [1, 2, 3])
def test_parallel_map_computes_in_order_in_worker_processes(executors, max_workers):
    items = [1_000_000 + i for i in range(12)]  # enough computing that a worker's start-up is a small share
    args = (items, max_workers) if max_workers != 2 else (items,)  # 2 is the default
    what = f"parallel_map(burn, 12 items{f', max_workers={max_workers}' if max_workers != 2 else ''})"
    result = computed_here = None
    with no_pool_left(what), ChildWork() as work:
        try:  # burn refuses to run in this process: computing here fails at the first item
            result = call(executors.parallel_map, workers.BurnElsewhere(), *args, within=25, what=what)
        except workers.ComputedHere as error:
            computed_here = error
    expect(
        computed_here is None,
        f"{what} called burn in the calling process (in a thread of it, or without any "
        "worker). Threads take turns on the GIL: use a ProcessPoolExecutor.",
    )
    expect(result == [workers.burn(n) for n in items], f"{what} should return burn(item) for each item, in order.")
    computing = work.pids()  # a tenth of the work: a worker that started late under load still counts
    expect(
        computing,
        f"{what} computed nothing in worker processes. Threads take turns on the GIL: use a ProcessPoolExecutor.",
    )
    expect(
        len(computing) >= min(max_workers, 2),
        f"{what} computed in {len(computing)} worker process(es); at least "
        f"{min(max_workers, 2)} should share the work"
        + (" (max_workers=2 is the default)." if max_workers == 2 else "."),
    )
    expect(
        len(work.cpu_by_pid) <= max_workers,
        f"{what} started {len(work.cpu_by_pid)} processes: use max_workers of them.",
    )
    expect(
        call(executors.parallel_map, workers.burn, [], max_workers, within=25) == [],
        "parallel_map(func, []) should return [].",
    )


@pytest.mark.no_chaos
def test_parallel_map_returns_the_results_in_the_order_of_the_items(executors):
    items = [(0, 2.0)] + [(i,) for i in range(1, 8)]  # stamp(value, seconds): item 0 takes 2 s, the others none
    what = "parallel_map(stamp, 8 items, max_workers=2), where item 0 takes 2 s and items 1 to 7 no time,"
    with no_pool_left(what):
        result = call(executors.parallel_map, workers.stamp_one, items, 2, within=25, what=what)
    got = [r[0] if isinstance(r, tuple) and r else r for r in result] if isinstance(result, list) else result
    expect(
        isinstance(result, list) and all(isinstance(r, tuple) and len(r) == 4 for r in result),
        f"{what} should return the list of stamp(item) for each item; got {shown(result)}.",
    )
    here = [r[0] for r in result if r[1] == os.getpid()]
    expect(
        not here,
        f"{what} computed items {here} in the calling process, not in worker processes: use a ProcessPoolExecutor.",
    )
    expect(
        got == list(range(8)),
        f"{what} gave the results of the items {shown(got)}, in that order; they should come in the order of the "
        "items, 0 to 7, whichever finished first. executor.map keeps that order (as_completed does not).",
    )


@pytest.mark.no_chaos
def test_parallel_map_sends_many_small_items_in_chunks(executors):
    items = list(range(20_000))
    what = "parallel_map(square, 20000 small items)"
    here = workers.counted_calls.get(os.getpid(), 0)
    started = time.perf_counter()
    result = call(executors.parallel_map, workers.counted_square, items, 2, within=30, what=what)
    best = time.perf_counter() - started
    expect(result == [i * i for i in items], "parallel_map(square, range(20000)) gave wrong results.")
    # With chunks the workers live a few milliseconds, too short to watch; but a call made by a
    # thread of this process is counted here, and one made in a worker process is not.
    expect(
        workers.counted_calls.get(os.getpid(), 0) == here,
        f"{what} computed in threads of the calling process, not in worker processes: use a ProcessPoolExecutor.",
    )
    reference_started = time.perf_counter()
    with concurrent.futures.ProcessPoolExecutor(2) as executor:  # one item per message
        list(executor.map(workers.square, items))
    one_by_one = time.perf_counter() - reference_started
    started = time.perf_counter()
    call(executors.parallel_map, workers.counted_square, items, 2, within=30, what=what)
    best = min(best, time.perf_counter() - started)
    expect(
        best * 3 < one_by_one,
        f"{what} took {best:.2f} s; sending the items one by one took {one_by_one:.2f} s "
        "here. A message to a worker costs far more than squaring a number: pass a chunksize to executor.map "
        "(for example _chunksize(len(items), max_workers)).",
    )


@pytest.mark.no_chaos
@pytest.mark.alone
def test_parallel_map_is_really_faster_with_two_processes(executors):
    expect_speedup(
        lambda size, n: call(executors.parallel_map, workers.burn, [size] * 8, n, within=30),
        size=100_000,
        limit=32_000_000,
        what=lambda size: f"parallel_map(burn, [{size}] * 8)",
    )
