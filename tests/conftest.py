"""Shared helpers for the repository's own tests."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from conclab import manifest
from conclab.core import cleanup
from conclab.core.cpus import usable_cpus
from conclab.dev import check as devcheck
from conclab.grading import runner

ROOT = manifest.course_root()
TOPICS = manifest.topics()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that takes `topic` runs once per topic; one that takes `mutant`, once per mutant."""
    if "topic" in metafunc.fixturenames:
        metafunc.parametrize("topic", TOPICS, ids=[t.id for t in TOPICS])
    if "mutant" in metafunc.fixturenames:
        mutants = devcheck.load_mutants(ROOT)
        metafunc.parametrize("mutant", mutants, ids=[m.id for m in mutants])


class Sandbox:
    """A throw-away folder with grader files and an implementation, run by a child pytest
    with the conclab plugin, the way the course runs its own graders.  Its modules test the
    machinery beneath the rules of graded code (they exit, fork, patch), so the static
    pre-check is off there (--conclab-unchecked; grading never passes it)."""

    def __init__(self, path: Path):
        self.path = path
        (path / "pytest.ini").write_text(
            "[pytest]\naddopts = -p conclab.engine.plugin --import-mode=importlib --conclab-unchecked\n"
        )

    def write(self, relative: str, text: str) -> Path:
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return target

    def pytest(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
            cwd=self.path,
            env=runner.child_env(ROOT),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    return Sandbox(tmp_path)


@pytest.fixture
def no_process_left():
    """Fail if the test leaves a process of its own running."""
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    yield
    left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before and cleanup.running(p)]
    for proc in left:
        proc.kill()
    assert not left, f"processes left running: {[p.cmdline() for p in left]}"


def pytest_xdist_auto_num_workers(config) -> int:
    """`-n auto`: two workers per usable CPU.  Most of these tests wait (for graders to wait
    out the time bounds a stub runs into, for child programs, for installs): on 2 CPUs the
    suite took 16:06 with 3 workers and 13:09 with 4 (the CPUs 79% busy).  Timing graders
    still run alone among grading runs (conclab.machine)."""
    return 2 * usable_cpus()


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "long: a test of minutes; runs first, so that with -n no worker is left finishing one alone at the end",
    )


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: item.get_closest_marker("long") is None)  # stable: the rest keep their order


BUSY_GRADER = """
import pytest

from conclab.core import cpus
from conclab.testing import call, expect, expect_speedup

cpus.others_took = lambda *args: 1.8  # this copy of the course runs on a machine always busy


@pytest.mark.no_chaos
@pytest.mark.alone
def test_count_primes_is_really_faster_with_two_processes(gil):
    # twice the work with two workers: two processes compute, no faster than one
    expect_speedup(
        lambda size, workers: call(gil.count_primes, [size] * 4 * workers, workers, within=25),
        size=5_000,
        limit=40_000,
        what=lambda size: f"count_primes([{size}] * 4)",
    )


def test_count_primes_counts(gil):
    expect(call(gil.count_primes, [10, 20], 2) == [4, 8], "count_primes([10, 20], 2) should be [4, 8].")
"""


@pytest.fixture
def busy_course(tmp_path):
    """A copy of the course whose graders of 08 time a speed-up on a machine that other programs
    keep busy for ever (simulated): its speed-up can never be measured."""
    import shutil

    course = tmp_path / "busy-course"
    for part in ("graders", "exercises"):
        shutil.copytree(ROOT / part, course / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", course)
    shutil.rmtree(course / "graders" / "08_gil")
    (course / "graders" / "08_gil").mkdir()
    (course / "graders" / "08_gil" / "test_busy.py").write_text(BUSY_GRADER.lstrip(), encoding="utf-8")
    return course
