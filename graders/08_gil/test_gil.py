"""Graders for topic 08: gil.py."""

import threading

import pytest

from conclab.testing import (
    ChildWork,
    CPUShare,
    EventLog,
    InFlight,
    Overlap,
    busy,
    call,
    expect,
    expect_speedup,
    idle,
    no_new_threads,
    shown,
)

SMALL = [0, 1, 2, 3, 10, 100, 1000, 7919, 7920]
PRIMES_BELOW = [0, 0, 0, 1, 4, 25, 168, 999, 1000]


# ------------------------------------------------------------------ fetch_all (I/O bound: threads)


@pytest.mark.parametrize("workers", [3, 8])
def test_fetch_all_has_workers_fetches_in_flight_and_never_more(gil, workers):
    fetch = InFlight(workers, str.upper)
    urls = [f"http://example.test/{i}" for i in range(24)]
    args = (urls, fetch, workers) if workers != 8 else (urls, fetch)  # 8 is the default
    with no_new_threads("fetch_all"):
        result = call(gil.fetch_all, *args, within=8)
    fetch.check(f"workers={workers}", "Waiting is I/O: run the fetches in threads.")
    expect(result == [url.upper() for url in urls], "fetch_all should return the results in the order of the urls.")
    expect(call(gil.fetch_all, [], str.upper) == [], "fetch_all([], fetch) should return [].")


def test_fetch_all_keeps_the_input_order_when_later_fetches_finish_first(gil):
    urls = [f"http://example.test/{i}" for i in range(6)]
    in_flight = Overlap()

    def fetch(url):  # the first url takes longest: the fetches end in reverse order
        with in_flight:
            threading.Event().wait(0.05 * (6 - int(url.rsplit("/", 1)[1])))
        return url[-1]

    result = call(gil.fetch_all, urls, fetch, 6, within=8)
    expect(
        in_flight.max >= 2,
        "fetch_all(urls, fetch, 6) ran the 6 fetches one after another: fetches wait for the network, so run "
        "them in threads, up to `workers` at once.",
    )
    expect(
        result == list("012345"),
        f"6 fetches with workers=6 ended in the reverse order of the urls; fetch_all should still return the "
        f"results in the order of the urls, ['0', '1', ..., '5'], not {shown(result)}. Put each result at its "
        "url's index, not where it happens to arrive.",
    )


# ------------------------------------------------------------------ count_primes (CPU bound: processes)


@pytest.mark.no_chaos
@pytest.mark.parametrize("workers", [2, 3])
def test_count_primes_computes_right_in_worker_processes(gil, workers):
    with ChildWork() as work:
        result = call(gil.count_primes, [30_000] * 6, workers, within=25)
    pids = work.pids()
    expect(result == [3245] * 6, f"count_primes([30000] * 6) should be [3245] * 6, got {result}.")
    small = call(gil.count_primes, SMALL, workers, within=25)
    expect(
        small == PRIMES_BELOW, f"count_primes({SMALL}) should be {PRIMES_BELOW} (primes below each limit), got {small}."
    )
    expect(call(gil.count_primes, [], workers, within=25) == [], "count_primes([]) should return [].")
    expect(
        len(pids) >= 2,
        f"count_primes(..., workers={workers}) did its computing in {len(pids)} child "
        "process(es). CPU-bound Python code runs one thread at a time under the GIL: compute in a "
        "multiprocessing.Pool of `workers` processes.",
    )
    expect(
        len(work.cpu_by_pid) <= workers + 1,
        f"count_primes(..., workers={workers}) started {len(work.cpu_by_pid)} processes: use `workers` of them.",
    )


@pytest.mark.no_chaos
def test_count_primes_uses_two_worker_processes_by_default(gil):
    with ChildWork() as work:
        result = call(gil.count_primes, [30_000] * 4, within=25, what="count_primes([30000] * 4)")
    expect(result == [3245] * 4, f"count_primes([30000] * 4) should be [3245] * 4, got {shown(result)}.")
    pids = work.pids()
    expect(
        len(pids) >= 2 and len(work.cpu_by_pid) <= 3,
        f"count_primes(limits) without `workers` should compute in 2 worker processes (workers=2 is the default); "
        f"{len(pids)} did the computing, and {len(work.cpu_by_pid)} were started.",
    )


@pytest.mark.no_chaos
@pytest.mark.alone
def test_count_primes_is_really_faster_with_two_processes(gil):
    expect_speedup(
        lambda size, workers: call(gil.count_primes, [size] * 4, workers, within=25),
        size=5_000,
        limit=2_000_000,
        what=lambda size: f"count_primes([{size}] * 4)",
    )


# ------------------------------------------------------------------ classify


@pytest.mark.no_chaos
@pytest.mark.alone  # CPU time over wall time: on a crowded machine a computing thread gets less than half a CPU
def test_classify_tells_computing_from_waiting(gil):
    # On a machine busy with other programs, a thread that computes for 0.3 s may get less than
    # half a CPU, and then "io" is the right answer: only a call in which the computing thread
    # had the CPU most of the time (or lost it to its own process) is judged.
    for _ in range(10):
        got = CPUShare()

        def compute() -> None:
            with got:
                busy(0.3)

        verdict = call(gil.classify, compute)
        if got.judgeable:
            break
    else:
        pytest.skip("The machine was too busy with other programs to tell computing from waiting; grade again.")
    expect(
        verdict == "cpu", f'A function that computes for 0.3 s is CPU bound: "cpu" (classify said {shown(verdict)}).'
    )
    expect(call(gil.classify, lambda: idle(0.3)) == "io", 'A function that sleeps for 0.3 s is I/O bound: "io".')


@pytest.mark.no_chaos
@pytest.mark.alone
def test_classify_counts_only_the_calling_threads_cpu_time(gil):
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            busy(0.01)

    spinner = threading.Thread(target=spin, name="grader:spinner", daemon=True)
    spinner.start()
    try:
        verdict = call(gil.classify, lambda: idle(0.4))
    finally:
        stop.set()
        spinner.join()
    expect(
        verdict == "io",
        'A function that sleeps is "io", even while another thread of the process computes. '
        "Measure the CPU time of the calling thread (time.thread_time), not of the whole process "
        f"(time.process_time); classify said {shown(verdict)}.",
    )


def test_classify_runs_func_once_in_the_calling_thread(gil):
    calls = EventLog()

    def classify_here():
        return threading.current_thread(), gil.classify(lambda: calls.add(threading.current_thread()))

    caller, verdict = call(classify_here, what="classify(func)")
    expect(
        calls.events == [caller],
        f"classify(func) should call func() once, in the thread that called classify (its CPU time is what is "
        f"measured); func() was called {len(calls.events)} time(s)"
        + (", in another thread." if calls.events and caller not in calls.events else "."),
    )
    expect(verdict in ("cpu", "io"), f'classify should return "cpu" or "io", not {shown(verdict)}.')
