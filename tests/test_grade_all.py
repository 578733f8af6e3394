"""`conclab grade-all`: a row per submission, whatever the submission does; a broken or
hanging one costs its own row only."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from conclab import manifest

ROOT = manifest.course_root()
THREADS = manifest.find("01")


def conclab(*args: str, cwd=None, timeout: float = 600, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "conclab", *args],
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env=env,
    )


def own_tmpdir(tmp_path):
    """An environment whose temporary folder is a fresh one under `tmp_path`, and that folder:
    a grading command must leave nothing there but the machine-wide timing locks, however
    its runs ended (see left_in)."""
    folder = tmp_path / "tmpdir"
    folder.mkdir()
    return {**os.environ, "TMPDIR": str(folder)}, folder


def left_in(tmpdir) -> list:
    return [p for p in tmpdir.iterdir() if not p.name.startswith("conclab-locks")]


def submission(folder, name, module_text=None, solved=False):
    """A student's checkout holding topic 01: the stub, the solution, or the given module."""
    target = folder / name / "exercises" / THREADS.id
    source = ROOT / ("solutions" if solved else "exercises") / THREADS.id
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    if module_text is not None:
        (target / THREADS.filename).write_text(module_text)


def test_every_submission_gets_its_row(tmp_path, no_process_left):
    subs = tmp_path / "submissions"
    submission(subs, "ada", solved=True)
    submission(subs, "bob")
    submission(subs, "cy", "import os\nos._exit(0)\n")
    submission(subs, "di", "def broken(:\n")
    submission(subs, "ed", "while True:\n    pass\n")
    (subs / "fay" / "notes").mkdir(parents=True)
    out = tmp_path / "grades.csv"
    started = time.monotonic()
    run = conclab("grade-all", str(subs), "--out", str(out), "--topic", "01")
    assert time.monotonic() - started < 180
    assert run.returncode == 1, run.stdout + run.stderr  # fay could not be graded at all
    rows = {row["student"]: row for row in csv.DictReader(out.open())}
    assert list(rows) == ["ada", "bob", "cy", "di", "ed", "fay"]
    assert (rows["ada"][THREADS.id], rows["ada"]["total"], rows["ada"]["status"]) == ("10", "10", "pass")
    assert (rows["bob"][THREADS.id], rows["bob"]["status"]) == ("0", "fail")
    assert (rows["cy"][THREADS.id], rows["cy"]["status"]) == ("0", "fail")  # refused: it imports os
    assert (rows["di"][THREADS.id], rows["di"]["status"]) == ("0", "fail")
    assert (rows["ed"][THREADS.id], rows["ed"]["status"]) == ("0", "fail")
    assert (rows["fay"][THREADS.id], rows["fay"]["status"]) == ("", "error")
    assert "no exercises/ folder" in rows["fay"]["notes"]
    assert rows["ada"]["max"] == "10"
    assert not processes_mentioning(subs)


def test_a_submission_that_runs_out_of_time_costs_only_its_row(tmp_path, no_process_left):
    subs = tmp_path / "submissions"
    submission(subs, "quick", solved=True)
    submission(
        subs,
        "stuck",
        "import threading\n_lock = threading.Lock()\n_lock.acquire()\n\n"
        "class SquareWorker(threading.Thread):\n    def __init__(self, n):\n"
        "        super().__init__()\n        _lock.acquire()\n\n"
        "def run_all(funcs):\n    _lock.acquire()\n\n"
        "def start_daemon(target, *args):\n    _lock.acquire()\n",
    )
    out = tmp_path / "grades.csv"
    env, tmpdir = own_tmpdir(tmp_path)
    started = time.monotonic()
    run = conclab(
        "grade-all",
        str(subs),
        "--out",
        str(out),
        "--topic",
        "01",
        "--timeout",
        "25",
        "--reports",
        str(tmp_path / "r"),
        env=env,
    )
    assert time.monotonic() - started < 120
    rows = {row["student"]: row for row in csv.DictReader(out.open())}
    assert rows["stuck"]["status"] == "error" and "did not finish within 25 s" in rows["stuck"]["notes"]
    assert rows["quick"][THREADS.id] == "10"
    assert (tmp_path / "r" / "quick.json").is_file() and (tmp_path / "r" / "stuck.log").is_file()
    assert run.returncode == 1
    assert not processes_mentioning(subs), "a grading run of the stopped submission is still there"
    assert not left_in(tmpdir), "the stopped run left temporary files behind"


def test_each_grading_run_has_its_own_temporary_and_lock_folders_and_names_no_file(tmp_path, monkeypatch):
    from conclab.core import machine
    from conclab.grading import gradeall, runner, seal

    seen = {}

    def run(command, cwd, env, timeout, running, pass_fds=(), on_start=None):
        seen.update(env, command=command, locks=sorted(os.listdir(env["CONCLAB_LOCKS"])))
        on_start()
        return 0, ""

    monkeypatch.setattr(runner, "run_in_own_group", run)
    submission(tmp_path, "ada", solved=True)
    gradeall.grade_submission(tmp_path / "ada", [THREADS], ROOT, 60, None, set(), seal.Snapshot.of(ROOT))
    assert seen["TMPDIR"].startswith(tempfile.gettempdir()) and "conclab-grade-all-" in seen["TMPDIR"]
    assert seen["CONCLAB_LOCKS"].startswith(seen["TMPDIR"]) and seen["locks"] == sorted(machine.LOCKS)
    # the report comes back over a pipe: the run is told the name of no file of the instructor's
    assert not [arg for arg in seen["command"] if arg.startswith("--json") or arg == "--reports"]
    assert any(arg.startswith("--report-fd=") for arg in seen["command"])


def test_without_inherited_pipes_the_report_comes_in_a_file_of_the_submissions_own_folder(tmp_path, monkeypatch):
    from conclab.grading import grade, gradeall, runner, seal

    def run(command, cwd, env, timeout, running, **pipes):
        assert not pipes and command[-2] == "--json" and command[-1].startswith(env["TMPDIR"])
        report = {"status": "pass", "topics": [{"id": THREADS.id, "score": 10, "status": "pass", "message": ""}]}
        Path(command[-1]).write_text(json.dumps(report))
        return 0, ""

    monkeypatch.setattr(grade, "CHANNEL", False)
    monkeypatch.setattr(runner, "run_in_own_group", run)
    submission(tmp_path, "ada", solved=True)
    row = gradeall.grade_submission(tmp_path / "ada", [THREADS], ROOT, 60, None, set(), seal.Snapshot.of(ROOT))
    assert (row.scores, row.status) == ({THREADS.id: 10.0}, "pass")


ADVERSARIAL = ROOT / "tests" / "adversarial"


def _written(paths) -> dict:
    return {path: path.read_bytes() for path in paths}


def test_a_daemon_that_outlives_its_run_cannot_rewrite_the_grades(tmp_path, no_process_left):
    """A double-forked daemon a submission starts to rewrite grade-all's CSV and its kept report
    once they are written: the submission scores 0, the others their due, and nothing changes
    after grade-all has ended."""
    subs, out, kept = tmp_path / "submissions", tmp_path / "grades.csv", tmp_path / "r"
    attack = (ADVERSARIAL / "daemon_rewrites_grades.py").read_text()
    attack = attack.replace("{grades}", str(out)).replace("{report}", str(kept / "mallory.json"))
    submission(subs, "ada", solved=True)
    submission(subs, "mallory", attack + (ROOT / "exercises" / THREADS.id / THREADS.filename).read_text())
    run = conclab("grade-all", str(subs), "--out", str(out), "--topic", "01", "--reports", str(kept))
    assert run.returncode == 0, run.stdout + run.stderr
    written = _written([out, kept / "mallory.json", kept / "ada.json"])
    time.sleep(3)  # past the daemon's time to strike
    assert _written(written) == written, "the grades changed after grade-all had written them"
    rows = {row["student"]: row for row in csv.DictReader(out.open())}
    assert (rows["ada"]["total"], rows["mallory"]["total"]) == ("10", "0")
    graded = json.loads((kept / "mallory.json").read_text())["topics"][0]
    assert all("it may import" in test["message"] for test in graded["tests"]), graded
    assert not processes_mentioning(subs)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="only Linux's grading reaps what leaves all else")
def test_code_past_the_guard_that_leaves_every_trace_still_cannot_rewrite_the_grades(tmp_path, no_process_left):
    """The same, from code the guard never saw (a sitecustomize in the grading run: as if a
    submission had found a way round it), which leaves the run's tree, process group and mark:
    ended with its run all the same, since each grading command reaps every orphan below it."""
    subs, out = tmp_path / "submissions", tmp_path / "grades.csv"
    submission(subs, "ada", solved=True)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ADVERSARIAL / "past_the_guard"), os.environ.get("PYTHONPATH", "")]),
        "CONCLAB_TEST_GRADES": str(out),
    }
    run = conclab("grade-all", str(subs), "--out", str(out), "--topic", "01", env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    written = _written([out])
    time.sleep(3)  # the daemon strikes 0.5 s after the grades are written
    assert _written(written) == written, "the grades changed after grade-all had written them"
    assert csv.DictReader(out.open()).__next__()["total"] == "10"
    assert not [p for p in psutil.process_iter(["cmdline"]) if str(out) in " ".join(p.info["cmdline"] or [])]


def processes_mentioning(path) -> list:
    """Processes anywhere on the machine whose command line names `path` (an orphan is no
    longer below the test process, so no_process_left cannot see it)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(str(path) in part for part in proc.info["cmdline"] or []):
            found.append(proc)
    return found


@pytest.mark.parametrize(
    "make, args, complaint",
    [
        (lambda p: None, ["missing"], "no such folder"),
        (lambda p: (p / "empty").mkdir(), ["empty"], "has no submission folders"),
        (lambda p: (p / "subs" / "ada").mkdir(parents=True), ["subs", "--jobs", "0"], "at least 1"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(tmp_path, make, args, complaint):
    make(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    run = conclab("grade-all", *args, "--out", "grades.csv", cwd=tmp_path)
    assert run.returncode == 2, run.stdout + run.stderr
    assert complaint in run.stderr
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize("command", ["grade", "grade-all"])
def test_a_grading_command_that_is_stopped_takes_its_runs_with_it(tmp_path, command):
    """A CI step that runs out of time sends SIGTERM: nothing the command started may stay."""
    subs = tmp_path / "submissions"
    submission(
        subs,
        "stuck",
        "import threading\n_lock = threading.Lock()\n_lock.acquire()\n\ndef run_all(funcs):\n    _lock.acquire()\n",
    )
    args = (
        ["grade", "--impl", str(subs / "stuck" / "exercises")]
        if command == "grade"
        else ["grade-all", str(subs), "--out", str(tmp_path / "grades.csv")]
    )
    env, tmpdir = own_tmpdir(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "conclab", *args, "--topic", "01"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    deadline = time.monotonic() + 60
    # each topic is graded from a private folder under the temporary folder
    while not any("--conclab-channel" in " ".join(p.cmdline()) for p in processes_mentioning(tmpdir)):
        assert time.monotonic() < deadline and proc.poll() is None, "the grading run never started"
        time.sleep(0.2)
    stopped = time.monotonic()
    proc.terminate()
    assert proc.wait(30) != 0
    took = time.monotonic() - stopped
    assert took < 10, f"SIGTERM took {took:.1f} s to end the command"
    time.sleep(0.5)
    assert not processes_mentioning(subs) and not processes_mentioning(tmpdir)
    assert not left_in(tmpdir), "the stopped command left temporary files behind"


def test_relative_paths_are_the_instructors_own(tmp_path):
    """SUBMISSIONS_DIR, --out and --reports relative to the folder grade-all is run in (each
    submission is graded from the course's folder, which must not change what they name)."""
    submission(tmp_path / "class", "ada", solved=True)
    run = conclab("grade-all", "class", "--out", "grades.csv", "--reports", "kept", "--topic", "01", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    rows = list(csv.DictReader((tmp_path / "grades.csv").open()))
    assert [(r["student"], r["total"]) for r in rows] == [("ada", "10")]
    assert (tmp_path / "kept" / "ada.json").is_file() and (tmp_path / "kept" / "ada.log").is_file()


def test_topics_that_could_not_be_measured_are_graded_again_alone_at_the_end(tmp_path, busy_course):
    from conclab.grading import runner

    gil = manifest.find("08")
    subs = tmp_path / "submissions"
    shutil.copytree(ROOT / "solutions" / gil.id, subs / "ada" / "exercises" / gil.id)
    shutil.copytree(ROOT / "exercises" / gil.id, subs / "bob" / "exercises" / gil.id)  # a fail: not graded again
    out, kept = tmp_path / "grades.csv", tmp_path / "reports"
    env = {**runner.child_env(busy_course), "CONCLAB_ROOT": str(busy_course)}
    done = conclab(
        "grade-all", str(subs), "--out", str(out), "--topic", "08", "--reports", str(kept), cwd=busy_course, env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Grading again, one at a time, 1 topic(s) that could not be measured" in done.stderr, done.stderr
    ada, bob = list(csv.DictReader(out.open()))
    assert ada[gil.id] == "5" and ada["status"] == "error", ada
    assert "could not be measured" in ada["notes"] and "conclab grade --topic 08_gil" in ada["notes"], ada
    again = json.loads((kept / "ada.again.json").read_text())
    assert [t["id"] for t in again["topics"]] == [gil.id]
    assert bob["status"] == "fail" and not (kept / "bob.again.json").exists(), bob  # threads: no worker process


def test_a_topic_graded_again_takes_the_new_result():
    from conclab.grading.gradeall import Row

    row = Row("ada")
    busy = {"id": "08_gil", "score": 5, "status": "error", "message": "1 test(s) could not be measured", "tests": [
        {"status": "error"}, {"status": "pass"}]}  # fmt: skip
    row.take({"topics": [busy, {"id": "01_threads", "score": 10, "status": "pass", "message": "", "tests": []}]})
    assert (row.status, row.unmeasured, row.total) == ("error", ["08_gil"], 15)
    assert row.notes == "08_gil: 1 test(s) could not be measured"
    row.take(
        {"topics": [{"id": "08_gil", "score": 10, "status": "pass", "message": "", "tests": [{"status": "pass"}]}]}
    )
    assert (row.status, row.unmeasured, row.total, row.notes) == ("pass", [], 20, "")
