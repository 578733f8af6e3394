"""Every reference solution passes; every untouched stub fails every grader, fast, and
leaves nothing running.  This is what `conclab dev check` does, as tests."""

from __future__ import annotations

import pytest

from conclab import manifest
from conclab.dev import check as devcheck

ROOT = manifest.course_root()
TOPICS = manifest.topics()

STUB_SECONDS = 20


@pytest.mark.long
def test_solutions_pass_every_grader_and_public_test():
    paths = [f"graders/{t.id}" for t in TOPICS] + [f"exercises/{t.id}" for t in TOPICS]
    run = devcheck.run_pytest(paths, impl=ROOT / "solutions")
    assert run.clean(), run.output[-5000:]  # a speed-up may not be measured on a busy machine: no fail
    assert run.outcomes and not run.failed()
    assert not run.left, run.left_text()


def test_stub_fails_every_grader_quickly(topic, no_process_left):
    run = devcheck.run_pytest([f"graders/{topic.id}"])
    assert run.returncode == 1, run.output[-3000:]
    assert run.outcomes, "no grader ran"
    assert not run.passed(), f"graders that pass on the untouched stub: {run.passed()}"
    # A process topic's stub deadlocks or leaves its children waiting: each grader waits out
    # its bounded call (3-8 s, enough for a solution to start processes on a busy machine).
    limit = STUB_SECONDS * (2.5 if topic.processes else 1)
    assert run.test_time < limit, f"the stub took {run.test_time:.1f} s to fail"
    assert not run.left, run.left_text()


def test_stub_fails_its_public_tests_quickly(topic, no_process_left):
    run = devcheck.run_pytest([f"exercises/{topic.id}"])
    assert run.returncode == 1, run.output[-3000:]
    assert run.failed()
    assert run.test_time < STUB_SECONDS, f"the stub took {run.test_time:.1f} s to fail"
    assert not run.left, run.left_text()


PROCESS_TOPICS = [t for t in TOPICS if t.processes]


@pytest.mark.long
@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_process_topics_pass_under_every_start_method(method):
    """Every test but the timing ones (marked `alone`: they need the machine to themselves),
    which the run above makes: here, under spawn above all (each pool starts fresh
    interpreters), they would hold up every other grading run for minutes.  Their results
    under each start method are measured by `conclab dev check --start-method`."""
    import multiprocessing

    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} start method on this platform")
    paths = [f"graders/{t.id}" for t in PROCESS_TOPICS] + [f"exercises/{t.id}" for t in PROCESS_TOPICS]
    run = devcheck.run_pytest(paths, impl=ROOT / "solutions", args=["--start-method", method, "-m", "not alone"])
    assert run.returncode == 0, run.output[-5000:]
    assert not run.left, run.left_text()
