"""`conclab grade`: points from the manifest, reports for people and for tools, and a
zero with the reason for a topic whose grading run dies or ends early."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import pytest

from conclab import manifest
from conclab.engine import report
from conclab.grading import grade as grading
from conclab.grading import runner

ROOT = manifest.course_root()
THREADS = manifest.find("01")
LOCKS = manifest.find("02")


def conclab(*args: str, cwd=None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "conclab", *args],
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def collected(*names_weights):
    return [{"nodeid": f"t.py::{name}", "name": name, "weight": weight} for name, weight in names_weights]


def results(**outcomes):
    return {
        f"t.py::{name}": {"outcome": outcome, "duration": 0.1, "message": f"{name} {outcome}"}
        for name, outcome in outcomes.items()
    }


def test_points_are_split_over_the_tests_by_weight():
    tests = collected(("test_a", 1), ("test_b", 3))
    result = grading.score_topic(THREADS, tests, results(test_a="failed", test_b="passed"), 1, 1, "", 1.0, 60)
    assert result.status == "fail"
    assert result.score == pytest.approx(7.5) and result.max_score == 10
    assert [t.max_score for t in result.tests] == [2.5, 7.5]
    assert result.tests[0].name == "a" and result.tests[0].message == "test_a failed"


def test_a_skipped_test_takes_its_points_out_of_the_split():
    tests = collected(("test_a", 1), ("test_b", 1))
    result = grading.score_topic(THREADS, tests, results(test_a="passed", test_b="skipped"), 0, 0, "", 1.0, 60)
    assert result.status == "pass" and result.score == 10
    assert [t.max_score for t in result.tests] == [10, 0]


@pytest.mark.parametrize(
    "case, returncode, exitstatus, done, reason",
    [
        ("stopped", -1, None, 2, "did not finish within 60 s"),
        ("nothing ran", 0, None, None, "ended before any test ran (exit status 0)"),
        ("ended early", 0, None, 1, "ended early (exit status 0, at the test 'b')"),
        ("pytest broke", 3, 3, 2, "could not run (pytest exit status 3)"),
    ],
)
def test_a_topic_whose_run_breaks_scores_zero_with_the_reason(case, returncode, exitstatus, done, reason):
    tests = collected(("test_a", 1), ("test_b", 1)) if done is not None else []
    outcomes = {"test_a": "passed", "test_b": "passed"} if done == 2 else {"test_a": "passed"}
    result = grading.score_topic(THREADS, tests, results(**outcomes), exitstatus, returncode, "last words", 1.0, 60)
    assert result.status == "error" and result.score == 0 and result.max_score == 10
    assert reason in result.message


def test_grade_gives_full_marks_to_solved_topics_and_zero_to_the_others(tmp_path):
    submission = tmp_path / "exercises"
    shutil.copytree(ROOT / "exercises", submission, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "solutions" / THREADS.id / THREADS.filename, submission / THREADS.id)
    report_path = tmp_path / "report.json"
    run = conclab("grade", "--impl", str(submission), "--topic", "01", "--topic", "02", "--json", str(report_path))
    assert run.returncode == 1, run.stdout + run.stderr
    data = json.loads(report_path.read_text())
    assert data["version"] == 1 and data["status"] == "fail"
    assert data["score"] == 10 and data["max_score"] == 20
    threads, locks = data["topics"]
    assert (threads["id"], threads["status"], threads["score"]) == (THREADS.id, "pass", 10)
    assert (locks["id"], locks["status"], locks["score"]) == (LOCKS.id, "fail", 0)
    assert all(t["message"] for t in locks["tests"])
    assert "Traceback" not in json.dumps(data)  # messages for a student, not tracebacks
    assert "01_threads" in run.stdout and "total" in run.stdout and "10.0 / 20" in run.stdout


def test_a_topic_that_would_exit_at_import_scores_zero_and_the_others_are_graded(tmp_path):
    submission = tmp_path / "exercises"
    for topic in (THREADS, LOCKS):
        shutil.copytree(
            ROOT / "solutions" / topic.id, submission / topic.id, ignore=shutil.ignore_patterns("__pycache__")
        )
    (submission / THREADS.id / THREADS.filename).write_text("import os\nos._exit(0)\n")
    run = conclab("grade", "--impl", str(submission), "--topic", "01", "--topic", "02", "--json", "-")
    assert run.returncode == 1, run.stdout + run.stderr
    data = json.loads(run.stdout)
    threads, locks = data["topics"]
    assert threads["status"] == "fail" and threads["score"] == 0
    assert all("imports os, which this exercise does not use" in t["message"] for t in threads["tests"])
    assert "imports os" in threads["integrity"]
    assert locks["status"] == "pass" and locks["score"] == 10
    assert data["status"] == "fail"


def test_gradescope_results_have_a_test_per_grader(tmp_path):
    run = conclab("grade", "--impl", str(ROOT / "solutions"), "--topic", "01", "--format", "gradescope", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["score"] == 10
    assert data["tests"] and all(
        set(t) >= {"name", "score", "max_score", "output", "visibility"} for t in data["tests"]
    )
    assert sum(t["max_score"] for t in data["tests"]) == pytest.approx(10)
    assert all(t["name"].startswith("01_threads: ") and t["status"] == "passed" for t in data["tests"])


@pytest.mark.parametrize(
    "args, complaint",
    [
        (["--topic", "99"], "no topic '99'"),
        (["--impl", "no/such/folder"], "no such folder"),
        (["--json", "no/such/folder/report.json"], "does not exist"),
        (["--jobs", "0"], "at least 1"),
    ],
)
def test_bad_options_are_refused_and_nothing_is_written(tmp_path, args, complaint):
    run = conclab("grade", *args, cwd=tmp_path)
    assert run.returncode == 2, run.stdout + run.stderr
    assert complaint in run.stderr
    assert list(tmp_path.iterdir()) == []


def signed(key: bytes, *records: dict) -> list[str]:
    """Records as a grading run sends them over its channel, signed with `key`."""
    lines = []
    for seq, record in enumerate(records):
        text = report._encode({**record, "seq": seq})
        lines.append(f"{report._mac(key, text)} {text}")
    return lines


KEY = b"k" * 32
RUN = [
    {"kind": "collected", "tests": collected(("test_a", 1), ("test_b", 1))},
    {"kind": "test", "nodeid": "t.py::test_a", "outcome": "passed", "duration": 0.1, "message": ""},
    {"kind": "test", "nodeid": "t.py::test_b", "outcome": "failed", "duration": 0.1, "message": "no"},
    {"kind": "complete", "exitstatus": 1},
]


def test_the_parent_reads_what_the_run_signed():
    results = report.parse(signed(KEY, *RUN), KEY)
    assert not results.tampered and results.exitstatus == 1
    assert [r["outcome"] for r in results.tests.values()] == ["passed", "failed"]


@pytest.mark.parametrize(
    "lines, reason",
    [
        (lambda: signed(b"x" * 32, *RUN), "did not write"),
        (lambda: signed(KEY, *RUN)[:1] + ["- " + signed(KEY, *RUN)[1].split(" ", 1)[1]], "did not write"),
        (lambda: signed(KEY, RUN[0], RUN[2], RUN[2], RUN[3]), "a second result"),
        (lambda: [signed(KEY, *RUN)[i] for i in (0, 2, 1, 3)], "out of its place"),
        (lambda: signed(KEY, RUN[0], {"kind": "test", "nodeid": "t.py::test_z", "outcome": "passed"}), "unknown"),
    ],
    ids=["another key", "unsigned", "a result twice", "reordered", "a test not collected"],
)
def test_records_the_run_did_not_write_make_its_results_worthless(lines, reason):
    results = report.parse(lines(), KEY)
    assert reason in results.tampered


def test_nothing_after_the_end_of_the_run_counts():
    late = {"kind": "test", "nodeid": "t.py::test_b", "outcome": "passed", "duration": 0.1, "message": ""}
    results = report.parse(signed(KEY, RUN[0], RUN[1], RUN[3], late), KEY)
    assert not results.tampered and list(results.tests) == ["t.py::test_a"]


def test_a_test_without_a_result_fails_and_integrity_fails_them_all():
    tests = collected(("test_a", 1), ("test_b", 1))
    result = grading.score_topic(THREADS, tests, results(test_a="passed"), 0, 0, "", 1.0, 60)
    assert [t.status for t in result.tests] == ["pass", "fail"] and result.score == 5
    assert "did not finish" in result.tests[1].message
    cheated = grading.score_topic(
        THREADS, tests, results(test_a="passed", test_b="passed"), 0, 0, "", 1.0, 60, integrity="changed `x`"
    )
    assert cheated.score == 0 and all(t.message == "changed `x`" for t in cheated.tests)
    assert cheated.integrity == "changed `x`"


def test_a_channel_carries_a_real_run_and_stops_waiting_for_a_pipe_held_open(tmp_path):
    """The run's end of the pipe may be kept open by a process it left behind: the parent
    still returns, within its grace, with what was sent."""
    channel = report.Channel()
    told_read, write = channel.fds
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from conclab.engine import report\n"
            "w = report.open_channel(int(sys.argv[1]))\n"
            "w.collected([{'nodeid': 'a', 'name': 'test_a', 'weight': 1}])\n"
            "w.test('a', 'passed', 0.1, 'fine')\n"
            "time.sleep(30)\n",
            str(told_read),
        ],
        pass_fds=channel.fds,
    )
    channel.handed_over()
    try:
        deadline = time.monotonic() + 20
        while "a" not in channel.results.tests and time.monotonic() < deadline:
            time.sleep(0.05)
        started = time.monotonic()
        results = channel.close(grace=0.5)
        assert time.monotonic() - started < 3
    finally:
        child.kill()
        child.wait()
    assert results.tests["a"]["outcome"] == "passed" and results.exitstatus is None and not results.tampered


def test_a_speed_up_that_could_not_be_measured_is_an_error_to_grade_again_never_a_fail(tmp_path, busy_course):
    course = busy_course
    env = {**runner.child_env(course), "CONCLAB_ROOT": str(course), "COLUMNS": "120"}
    common = [sys.executable, "-m", "conclab", "grade", "--impl", str(ROOT / "solutions"), "--topic", "08"]
    graded = subprocess.run(
        [*common, "--json", str(tmp_path / "r.json")], cwd=course, env=env, capture_output=True, text=True, timeout=600
    )
    assert graded.returncode == 1, graded.stdout + graded.stderr  # not everything passed, and grading did run
    topic = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))["topics"][0]
    statuses = {t["name"]: t["status"] for t in topic["tests"]}
    assert statuses == {"count primes is really faster with two processes": "error", "count primes counts": "pass"}
    assert topic["status"] == "error" and topic["score"] == pytest.approx(5.0), topic
    test = next(t for t in topic["tests"] if t["status"] == "error")
    assert test["message"].startswith("Could not be measured:") and "conclab grade --topic 08_gil" in test["message"]
    assert "conclab grade --topic 08_gil" in topic["message"]
    assert "could not be measured" in graded.stdout and "fail" not in graded.stdout.split("Where to look")[0]
    gradescope = subprocess.run(
        [*common, "--format", "gradescope", "--json", str(tmp_path / "gs.json")],
        cwd=course, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert gradescope.returncode == 1, gradescope.stdout + gradescope.stderr
    entries = json.loads((tmp_path / "gs.json").read_text(encoding="utf-8"))["tests"]
    assert len(entries) == 2 and any(e["output"].startswith("Could not be measured:") for e in entries), entries
