"""The speed-up check (kit/parallel.py) on a busy machine: how much of the CPUs other programs
take is measured, a verdict rests on the runs that had the CPUs, and a speed-up that could
not be measured for want of them is NotMeasured, never a fail.  Code that computes in one
process still fails at once.  The machine's load is simulated here (cpus.others_took), the
processes and their timing are real."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import pytest

from conclab.core import cpus
from conclab.kit import parallel
from conclab.kit.workers import burn

pytestmark = pytest.mark.skipif(cpus.usable_cpus() < 2, reason="a speed-up needs 2 usable CPUs")

SIZE, LIMIT = 400_000, 400_000  # about 0.05 s of computing a task; never grown


def in_processes(size, workers):
    """Correct: four tasks shared by `workers` processes."""
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(burn, [size] * 4))


def twice_the_work(size, workers):
    """Two processes that compute, but each does all the work: no faster with two."""
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(burn, [size] * 4 * workers))


def one_process(size, workers):
    with ProcessPoolExecutor(1) as pool:
        list(pool.map(burn, [size] * 4))


def what(size):
    return f"run({size})"


@pytest.fixture
def machine(monkeypatch):
    """machine.busy = [others' CPUs for the 1st run, the 2nd, ...]; the last value repeats."""

    class Machine:
        busy = [0.0]
        runs = 0

    def others_took(before, after, own, wall):
        Machine.runs += 1
        return Machine.busy[min(Machine.runs, len(Machine.busy)) - 1]

    monkeypatch.setattr(cpus, "others_took", others_took)
    return Machine


def test_a_speed_up_the_busy_machine_hid_is_not_measured_not_failed(machine):
    machine.busy = [1.5]
    with pytest.raises(parallel.NotMeasured) as raised:
        parallel.expect_speedup(twice_the_work, SIZE, LIMIT, what)
    text = str(raised.value)
    assert "did compute in 2 worker processes" in text and "1.5 of its" in text, text
    assert machine.runs >= 2 * 20, "every round the budget allows should be tried, for a quiet moment"


def test_without_a_speed_up_on_a_quiet_machine_it_fails(machine):
    machine.busy = [0.0]
    with pytest.raises(pytest.fail.Exception) as failed:
        parallel.expect_speedup(twice_the_work, SIZE, LIMIT, what)
    assert "a speed-up of" in str(failed.value) and "the machine had the CPUs" in str(failed.value)


def test_the_quiet_rounds_of_a_busy_machine_are_judged(machine):
    machine.busy = [1.5] * 12 + [0.0]  # busy for the first rounds (the first runs grow the work)
    with pytest.raises(pytest.fail.Exception) as failed:
        parallel.expect_speedup(twice_the_work, SIZE, LIMIT, what)
    assert "a speed-up of" in str(failed.value)
    verdict = parallel.judge_speedup(twice_the_work, SIZE, LIMIT)
    assert verdict.measured and verdict.fair_rounds >= 3


def test_one_process_fails_at_once_however_busy_the_machine(machine):
    machine.busy = [1.8]
    started = time.monotonic()
    with pytest.raises(pytest.fail.Exception) as failed:
        parallel.expect_speedup(one_process, SIZE, LIMIT, what)
    assert "did not compute in 2 worker processes" in str(failed.value)
    assert machine.runs <= 1 + 2 * 3 + 3, "code that shows one worker gains nothing from more rounds"
    assert time.monotonic() - started < 60


def test_correct_code_on_a_busy_machine_passes_or_is_not_measured_but_never_fails(machine):
    machine.busy = [1.5]
    try:
        parallel.expect_speedup(in_processes, SIZE, LIMIT, what)
    except parallel.NotMeasured:
        pass


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/stat is Linux's")
def test_what_other_programs_take_of_the_cpus_is_measured():
    hog = "import time\nend = time.monotonic() + 1.5\nwhile time.monotonic() < end: pass\n"
    before, started = cpus.busy_now(), time.monotonic()
    subprocess.run([sys.executable, "-c", hog], check=True, timeout=60)
    wall = time.monotonic() - started
    after = cpus.busy_now()
    seen = cpus.others_took(before, after, 0.0, wall)
    assert seen is not None and seen >= 0.6, f"a program computing for 1.5 s was seen taking {seen} CPUs"
    own = cpus.others_took(before, after, 1.5, wall)  # the same CPU seconds, counted as this process's own
    assert own is not None and own <= seen - 0.6
