"""Evidence of parallel work, that holds on a noisy 2-core machine.

    usable_cpus()            CPUs this process may really use (affinity, cgroup quota)
    needs_cpus(2)            skip a speed-up check, saying why, on a machine with fewer
    CPUShare()               `with CPUShare() as got:` around a block of this thread:
                             got.share (its CPU over wall time), got.judgeable
    ChildWork()              `with ChildWork() as work:` around a call; afterwards
                             work.pids (child processes that used CPU), work.cpu (their
                             CPU seconds) and work.wall
    speedup(serial, par)     best-of-N times of two callables, run interleaved
    judge_speedup(run, ...)  the evidence that run(size, 2) is faster than run(size, 1)
    expect_speedup(run, ...) the same, as a grader check with a message for the student

A speed-up measured once is noise: another program may take the other core for a
moment.  So the graders look at three things, each robust on its own: several child
processes did the work (distinct PIDs with CPU time), their CPU time together exceeds
the wall time (they ran at the same time), and the best of several interleaved runs of
the serial and the parallel version is clearly faster in parallel.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from time import perf_counter as _clock
from time import process_time as _process_time
from time import sleep as _sleep
from time import thread_time as _thread_time

import psutil
import pytest

from conclab.core import cleanup, cpus
from conclab.core.cpus import usable_cpus

from .vocabulary import expect, time_left

try:
    import resource
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]


def needs_cpus(n: int = 2) -> None:
    """Skip the rest of the test when fewer than n CPUs are usable."""
    have = usable_cpus()
    if have < n:
        pytest.skip(
            f"only {have} usable CPU(s) here: a speed-up cannot show on fewer than {n}, "
            "so this timing check is skipped (the other checks still count)"
        )


def _children_rusage() -> float:
    if resource is None:
        return 0.0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class ChildWork:
    """Watch the child processes started during a block: which used the CPU, and how much.

    A sampler thread reads every descendant's CPU time every few milliseconds (a process
    that has ended can no longer be asked, so the last reading counts); the CPU time of
    children reaped meanwhile (os.wait) is taken from the kernel's own account as well,
    and the larger of the two totals is used."""

    every: float = 0.005
    cpu_by_pid: dict[int, float] = field(default_factory=dict)
    wall: float = 0.0
    cpu: float = 0.0
    others: float | None = None  # CPUs other programs kept busy meanwhile (None: not known here)

    def __enter__(self) -> ChildWork:
        self._me = psutil.Process()
        self._before = {p.pid for p in self._me.children(recursive=True)}
        self._rusage = _children_rusage()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="grader:child-sampler", daemon=True)
        self._busy, self._own = cpus.busy_now(), _process_time()
        self._started = _clock()
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._read()
            self._stop.wait(self.every)

    def _read(self) -> None:
        try:
            children = self._me.children(recursive=True)
        except psutil.Error:
            return
        helpers = cleanup.infrastructure_pids()  # the forkserver and resource tracker do no work
        for child in children:
            if child.pid in self._before or child.pid in helpers:
                continue
            try:
                times = child.cpu_times()
            except psutil.Error:
                continue
            self.cpu_by_pid[child.pid] = max(self.cpu_by_pid.get(child.pid, 0.0), times.user + times.system)

    def __exit__(self, *exc: object) -> None:
        self.wall = _clock() - self._started
        busy, own = cpus.busy_now(), _process_time() - self._own
        self._read()
        self._stop.set()
        self._thread.join()
        # A helper started during the block (the forkserver, the resource tracker) is known as
        # one only once multiprocessing has noted its pid; a sample may have come first.
        for pid in cleanup.infrastructure_pids():
            self.cpu_by_pid.pop(pid, None)
        sampled = sum(self.cpu_by_pid.values())
        self.cpu = max(sampled, _children_rusage() - self._rusage)
        self.others = cpus.others_took(self._busy, busy, own + self.cpu, self.wall)

    def pids(self, share: float = 0.1) -> list[int]:
        """Children that did at least `share` of the children's CPU work."""
        total = sum(self.cpu_by_pid.values())
        return [pid for pid, cpu in self.cpu_by_pid.items() if total and cpu >= share * total]

    @property
    def cpu_over_wall(self) -> float:
        return self.cpu / self.wall if self.wall else 0.0


@dataclass
class Speedup:
    serial: float
    parallel: float

    @property
    def ratio(self) -> float:
        return self.serial / self.parallel if self.parallel else 0.0


def speedup(serial: Callable[[], object], parallel: Callable[[], object], rounds: int = 3) -> Speedup:
    """Best-of-`rounds` wall times of serial() and parallel(), run alternately, so that a
    moment of load elsewhere on the machine hurts both the same way."""
    best_serial = best_parallel = float("inf")
    for _ in range(rounds):
        started = _clock()
        serial()
        best_serial = min(best_serial, _clock() - started)
        started = _clock()
        parallel()
        best_parallel = min(best_parallel, _clock() - started)
    return Speedup(best_serial, best_parallel)


#: One worker's run is grown to at least this many seconds before the timing rounds.
ONE_WORKER = 0.5
#: ... by at least this factor a step (a run just short of ONE_WORKER still grows a little).
GROWTH = 1.25

#: A run had the CPUs it needed when other programs kept at most this much of one CPU busy.
FAIR = 0.3


class NotMeasured(Exception):
    """Raised by a grader when what it measures could not be measured, because other
    programs took the CPUs: the test is reported as "could not be measured" (worth nothing
    yet, to be graded again), not as a fail.  The code under test cannot raise it to the
    same effect: one raised through the student's code is an ordinary failure."""


def fair(work: ChildWork, needed: int) -> bool:
    """Whether the run had the `needed` CPUs, others' programs aside (an unknown load counts
    as fair: where it cannot be read, every run is judged)."""
    return work.others is None or usable_cpus() - work.others >= needed - FAIR


@dataclass
class Verdict:
    size: int
    times: Speedup
    use_serial: float  # CPUs the children kept busy with 1 worker (best run)
    use_parallel: float  # ... and with 2
    workers_seen: int  # child processes that did a share of the work with 2 workers
    rounds: int = 0  # how many times each was run
    fair_rounds: int = 0  # rounds in which both runs had the CPUs they needed
    others: float | None = None  # CPUs other programs kept busy in the quietest run with 2 workers

    def convincing(self, ratio: float = 1.1) -> bool:
        return self.workers_seen >= 2 and self.times.ratio >= ratio and self.use_parallel >= 1.05 * self.use_serial

    @property
    def measured(self) -> bool:
        """Whether the verdict rests on rounds that had the CPUs (else: the machine was busy)."""
        return self.fair_rounds >= 2 or self.convincing() or self.workers_seen < 2


def judge_speedup(
    run: Callable[[int, int], object],
    size: int,
    limit: int,
    rounds: int = 3,
    max_rounds: int = 20,
    time_left: Callable[[], float | None] = time_left,
) -> Verdict:
    """Time run(size, 1) against run(size, 2) in child processes.

    First the work grows (up to `limit`) until one worker needs at least ONE_WORKER seconds
    and eight times the time of the smallest run, so that computing, not starting
    processes, is what gets measured: each step aims at that time from the last run's,
    growing the size at most eightfold.  Then both are run `rounds` times, interleaved, and
    the best times count.  Each run also notes how much of the CPUs other programs took
    meanwhile (ChildWork.others).  When the verdict does not convince yet and other programs
    took the CPUs, more rounds follow, up to `max_rounds`, each a fresh chance to time both
    in a quiet moment; the verdict then rests on the rounds that had the CPUs (`measured`
    says whether there were enough of them).  Code that does not compute in two processes
    gains nothing from more rounds (it shows one worker), so it gets none.

    All of it fits in the test's time budget (time_left()): the work stops growing while
    the rounds at the next size might not fit in half of what is left, and no round starts
    that might not end in time, so that a slow machine gets a verdict on what was
    measured, not a test stopped as stuck."""

    def fits(seconds: float) -> bool:
        left = time_left()
        return left is None or seconds <= left

    def most(seconds_each: float) -> float:
        """The largest factor the size may grow by, if a run at the grown size takes
        seconds_each times that factor."""
        left = time_left()
        return float("inf") if left is None else left / seconds_each

    overhead = None
    while True:
        with ChildWork() as one:
            run(size, 1)
        overhead = overhead or one.wall
        aim = max(ONE_WORKER, 8 * overhead)
        if one.wall >= aim or size >= limit:
            break
        # At the grown size: one run to grow, then `rounds` rounds of two runs, none of them
        # (under load) much faster than one worker, in at most half of what is left.
        factor = min(8.0, max(GROWTH, 1.1 * aim / one.wall), most(2 * (1 + 2 * rounds) * one.wall))
        if factor < GROWTH:
            break
        size = min(limit, max(size + 1, int(size * factor)))
    pairs: list[tuple[ChildWork, ChildWork]] = []

    def quiet(pair: tuple[ChildWork, ChildWork]) -> bool:
        return fair(pair[0], 1) and fair(pair[1], 2)

    def verdict_of(chosen: list[tuple[ChildWork, ChildWork]]) -> Verdict:
        """The verdict on the `chosen` rounds; rounds, fair_rounds and others always count them all."""
        ones, twos = [one for one, _ in chosen], [two for _, two in chosen]
        best_two = max(twos, key=lambda work: work.cpu_over_wall)
        others = [two.others for _, two in pairs if two.others is not None]
        return Verdict(
            size,
            Speedup(min(w.wall for w in ones), min(w.wall for w in twos)),
            max(w.cpu_over_wall for w in ones),
            best_two.cpu_over_wall,
            len(best_two.pids()),
            len(pairs),
            sum(map(quiet, pairs)),
            min(others) if others else None,
        )

    def verdict() -> Verdict:
        judged = verdict_of(pairs)
        if judged.convincing() or judged.workers_seen < 2:
            return judged
        had_the_cpus = [pair for pair in pairs if quiet(pair)]
        if 2 <= len(had_the_cpus) < len(pairs):  # judged on the rounds that had the CPUs
            return verdict_of(had_the_cpus)
        return judged

    for done in range(1, max(rounds, max_rounds) + 1):
        with ChildWork() as one:
            run(size, 1)
        with ChildWork() as two:
            run(size, 2)
        pairs.append((one, two))
        if done >= rounds:
            judged = verdict()
            if judged.convincing() or judged.workers_seen < 2 or judged.fair_rounds >= rounds:
                break
        if not fits(3 * (one.wall + two.wall) + 2.0):
            break
    return verdict()


def expect_speedup(run: Callable[[int, int], object], size: int, limit: int, what: Callable[[int], str]) -> Verdict:
    """The speed-up check of every CPU-bound topic: run(size, workers) must compute in
    worker processes and be clearly faster with two of them than with one (see
    judge_speedup).  what(size) names the call for the student, e.g. "count_primes([N] * 4)".
    Skipped, saying why, with fewer than two usable CPUs; NotMeasured when other programs
    kept the CPUs busy in every round."""
    needs_cpus(2)
    # Only whether worker processes show up counts here (a small run may take less CPU than
    # the clock can see); a run so short that, on a busy machine, its workers came and went
    # between two looks is run again, bigger.
    first_size = size
    for _ in range(3):
        with ChildWork() as first:
            run(first_size, 2)
        if first.cpu_by_pid:
            break
        first_size = min(limit, first_size * 4)
    expect(
        first.cpu_by_pid,
        f"{what(first_size)} with 2 workers started no worker process, so it cannot be faster with two.",
    )
    verdict = judge_speedup(run, size, limit)
    expect(verdict.workers_seen >= 2, f"{what(verdict.size)} with 2 workers did not compute in 2 worker processes.")
    cpus_here = usable_cpus()
    if not verdict.measured:
        raise NotMeasured(
            f"{what(verdict.size)} did compute in 2 worker processes, but other programs on this machine kept "
            f"{verdict.others:.1f} of its {cpus_here} CPUs busy even in the quietest of {verdict.rounds} rounds of "
            "timing runs, so a speed-up could not show. This says nothing about your code."
        )
    on = "this free-threaded build" if not gil_enabled() else "two cores"
    others = (
        ""
        if verdict.others is None
        else f" Other programs kept less than {FAIR:g} of a CPU busy in the runs compared: the machine had the CPUs."
    )
    expect(
        verdict.convincing(),
        f"{what(verdict.size)} took {verdict.times.serial:.2f} s with 1 worker process and "
        f"{verdict.times.parallel:.2f} s with 2 (best of {verdict.rounds} runs each): a speed-up of "
        f"{verdict.times.ratio:.2f}, expected at least 1.1 on {on}. The worker processes kept "
        f"{verdict.use_serial:.2f} and {verdict.use_parallel:.2f} CPUs busy.{others}",
    )
    return verdict


def gil_enabled() -> bool:
    """False only on a free-threaded build running without the GIL."""
    check = getattr(sys, "_is_gil_enabled", None)
    return True if check is None else bool(check())


class CPUShare:
    """What the calling thread got of a CPU while the block ran (`share`: its CPU time over the
    wall time), and whether that says anything about the code under test (`judgeable`): it does
    when the thread had the CPU most of the time, or when what kept it from the CPU was its own
    process (other threads, child processes: the code under test's doing); not when other
    programs on a busy machine took the CPUs."""

    def __init__(self, enough: float = 0.7):
        self.enough = enough
        self.share = 0.0
        self.own_elsewhere = 0.0

    def __enter__(self) -> CPUShare:
        self._start = (_clock(), _thread_time(), _process_time(), _children_cpu())
        return self

    def __exit__(self, *exc: object) -> None:
        wall, thread, process, children = (
            b - a for a, b in zip(self._start, (_clock(), _thread_time(), _process_time(), _children_cpu()))
        )
        self.share = thread / max(wall, 1e-9)
        self.own_elsewhere = max(0.0, process - thread) + max(0.0, children)
        self._wall = wall

    @property
    def judgeable(self) -> bool:
        return self.share >= self.enough or self.own_elsewhere >= 0.2 * self._wall


def _children_cpu() -> float:
    try:
        children = psutil.Process().children(recursive=True)
    except psutil.Error:
        return 0.0
    total = 0.0
    for child in children:
        try:
            times = child.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def busy(seconds: float) -> None:
    """Keep this thread on the CPU for about `seconds` (a grader-side CPU-bound task)."""
    deadline = _clock() + seconds
    x = 0
    while _clock() < deadline:
        for i in range(1000):
            x += i * i


def idle(seconds: float) -> None:
    """Wait without using the CPU (a grader-side I/O-bound task)."""
    _sleep(seconds)
