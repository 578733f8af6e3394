"""The conclab command, run as a user would."""

from __future__ import annotations

import subprocess
import sys

from conclab import manifest

ROOT = manifest.course_root()


def conclab(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "conclab", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def test_grade_gives_full_points_to_a_solution_and_none_to_a_stub():
    run = conclab("grade", "--impl", "solutions", "--topic", "02", "--topic", "condition")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "02_locks               pass   10.0 / 10" in run.stdout
    assert "03_condition           pass   10.0 / 10" in run.stdout
    run = conclab("grade", "--topic", "01")
    assert run.returncode == 1
    assert "01_threads             fail    0.0 / 10" in run.stdout


def test_grade_refuses_bad_input_clearly():
    run = conclab("grade", "--topic", "99")
    assert run.returncode == 2 and "no topic '99'" in run.stderr
    run = conclab("grade", "--impl", "no/such/folder")
    assert run.returncode == 2 and "no such folder" in run.stderr


def test_dev_bench_prints_the_speed_up_of_each_cpu_bound_function():
    run = conclab("dev", "bench", "--rounds", "1")
    assert run.returncode == 0, run.stderr
    assert "gil.count_primes" in run.stdout and "usable CPU" in run.stdout
    assert conclab("dev", "bench", "--rounds", "0").returncode == 2


def test_export_refuses_bad_input_and_writes_nothing(tmp_path):
    (tmp_path / "taken").mkdir()
    before = sorted(tmp_path.rglob("*"))
    for args, complaint in [
        (["nbgrader", str(tmp_path / "taken")], "already exists"),
        (["nbgrader", str(tmp_path / "new"), "--topic", "99"], "no topic '99'"),
        (["nbgrader", str(tmp_path / "no" / "such" / "course")], "does not exist"),
        (["classroom50", str(tmp_path / "taken")], "already exists"),
        (["gradescope", str(tmp_path / "out.tar")], "must be a .zip"),
    ]:
        run = conclab("export", *args)
        assert run.returncode == 2 and complaint in run.stderr, (args, run.stderr)
    assert sorted(tmp_path.rglob("*")) == before


def test_export_help_lists_the_platforms_only():
    run = conclab("export", "--help")
    assert run.returncode == 0 and "{gradescope,classroom50,nbgrader}" in run.stdout, run.stdout
    assert "place" not in run.stdout and "SUPPRESS" not in run.stdout, run.stdout
