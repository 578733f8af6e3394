"""Graders for topic 08: gil.py."""

import threading

import pytest

from conclab.testing import (
    ChildWork,
    CPUShare,
    InFlight,
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
