"""Submissions that hang, crash, flood or cheat (tests/adversarial/cases.toml) are graded as
`conclab grade` grades any submission: the topic under attack scores what its real
behaviour deserves, the solved topic beside it scores full marks, the run ends within its
time limit with its report written, and nothing it started is left running."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conclab import manifest
from conclab.core import cleanup
from conclab.dev import check as devcheck
from conclab.grading import grade as grading
from conclab.grading import runner, seal
from conclab.manifest import tomllib

ROOT = manifest.course_root()
BYSTANDER = manifest.find("06")  # quick to grade, and no part of any attack


@dataclass
class Case:
    name: str
    topic: manifest.Topic
    attack: str
    expect: str  # zero, full or fails
    fails: list[str] = field(default_factory=list)
    edits: list[devcheck.Edit] = field(default_factory=list)
    source: str | None = None
    stub: bool = False
    files: dict[str, str] = field(default_factory=dict)
    root_files: dict[str, str] = field(default_factory=dict)
    listens: bool = False
    says: str = ""
    links: dict[str, str] = field(default_factory=dict)
    fifos: list[str] = field(default_factory=list)
    pad: int = 0
    own_course: bool = False
    leak: str = ""


def load_cases() -> list[Case]:
    data = tomllib.loads((ROOT / "tests" / "adversarial" / "cases.toml").read_text(encoding="utf-8"))
    cases = []
    for entry in data["case"]:
        cases.append(
            Case(
                entry["name"],
                manifest.find(entry["topic"]),
                entry["attack"],
                entry["expect"],
                entry.get("fails", []),
                devcheck.edits_of(entry),
                entry.get("source"),
                entry.get("stub", False),
                entry.get("files", {}),
                entry.get("root_files", {}),
                entry.get("listens", False),
                entry.get("says", ""),
                entry.get("links", {}),
                entry.get("fifos", []),
                entry.get("pad", 0),
                entry.get("own_course", False),
                entry.get("leak", ""),
            )
        )
    return cases


CASES = load_cases()


def write_submission(case: Case, folder: Path) -> None:
    """The attacked topic as the case says, the bystander solved, and the case's files."""
    shutil.copytree(ROOT / "solutions" / BYSTANDER.id, folder / BYSTANDER.id)
    module = folder / case.topic.id / case.topic.filename
    module.parent.mkdir(parents=True)
    if case.stub:  # the untouched stub, and the case's source after it, if any
        stub = (ROOT / "exercises" / case.topic.id / case.topic.filename).read_text(encoding="utf-8")
        module.write_text(stub + "\n" + (case.source or "").lstrip("\n"), encoding="utf-8")
    elif case.source is not None:
        module.write_text(case.source.lstrip("\n"), encoding="utf-8")
    else:
        mutant = devcheck.Mutant(case.topic, case.name, case.attack, case.edits)
        devcheck.make_mutant(mutant, folder)
    for relative, text in case.files.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(text.lstrip("\n"), encoding="utf-8")
    if case.pad:
        with open(module, "a", encoding="utf-8") as f:
            f.write("# padding\n" * (case.pad // 10 + 1))
    for relative, target in case.links.items():
        (folder / relative).unlink(missing_ok=True)
        (folder / relative).symlink_to(ROOT / target)
    for relative in case.fifos:
        (folder / relative).unlink(missing_ok=True)
        os.mkfifo(folder / relative)


def course_for(case: Case, tmp_path: Path) -> Path:
    """The course itself, or a copy of its graders with the case's files beside them (as in
    a student's repository)."""
    if not case.root_files and not case.own_course:
        return ROOT
    course = tmp_path / "course"
    shutil.copytree(ROOT / "graders", course / "graders", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(ROOT / "pyproject.toml", course / "pyproject.toml")
    for relative, text in case.root_files.items():
        (course / relative).write_text(text.lstrip("\n"), encoding="utf-8")
    return course


def environment(course: Path) -> dict[str, str]:
    """The environment grading runs in; for a copy of the course, with its own copy of the
    package first on the path, so that even grading that let a submission write to the files
    it grades with could damage nothing but the copy."""
    env = runner.child_env(course)
    if course != ROOT:
        env["PYTHONPATH"] = os.pathsep.join([str(course / "graders"), *filter(None, [env.get("PYTHONPATH")])])
    return env


def left_behind(mark: str) -> list[str]:
    """Kill what the run left running; describe it."""
    procs = cleanup.marked(mark)
    described = cleanup.describe_processes(procs)
    cleanup.kill_processes(procs)
    return described.splitlines()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_grading_survives(case: Case, tmp_path: Path):
    submission = tmp_path / "submission"
    write_submission(case, submission)
    course = course_for(case, tmp_path)
    report_path = tmp_path / "grades.json"
    limit = grading.topic_timeout(case.topic) + 30
    mark = uuid.uuid4().hex
    command = [
        sys.executable,
        "-m",
        "conclab",
        "grade",
        "--impl",
        str(submission),
        "--topic",
        case.topic.id,
        "--topic",
        BYSTANDER.id,
        "--json",
        str(report_path),
    ]
    course_before = seal.Snapshot.of(course)
    started = time.monotonic()
    with open(tmp_path / "output.txt", "wb") as out:
        proc = subprocess.Popen(
            command,
            cwd=course,
            env=cleanup.with_mark({**environment(course), "CONCLAB_TEST_PORT_FILE": str(tmp_path / "port")}, mark),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            returncode = proc.wait(limit)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            returncode = None
    took = time.monotonic() - started
    leftovers = left_behind(mark)
    output = (tmp_path / "output.txt").read_text(encoding="utf-8", errors="replace")
    print(f"{case.name}: exit {returncode}, {took:.1f} s")

    assert returncode is not None, f"grading did not end within {limit:g} s\n{output[-3000:]}"
    assert not course_before.changed(course), f"the course changed: {course_before.changed(course)}"
    assert not leftovers, "left running after grading:\n" + "\n".join(leftovers)
    assert returncode in (0, 1), output[-3000:]
    assert len(output) < 200_000, f"grading printed {len(output)} characters"
    report = json.loads(report_path.read_text(encoding="utf-8"))
    topics = {t["id"]: t for t in report["topics"]}
    bystander, attacked = topics[BYSTANDER.id], topics[case.topic.id]
    assert bystander["score"] == pytest.approx(BYSTANDER.points), bystander
    assert len(json.dumps(attacked)) < 100_000, "the report holds what the submission printed"
    failed = sorted(t["name"] for t in attacked["tests"] if t["status"] == "fail")
    shown = f"{attacked['status']}, {attacked['score']:g} points: {attacked['message']}, failed {failed}"
    print(
        f"{case.name}: {case.topic.id} {attacked['status']} {attacked['score']:.4g}/{case.topic.points}, "
        f"{len(failed)} of {len(attacked['tests'])} graders failed"
    )
    if case.expect == "zero":
        assert attacked["score"] == 0 and attacked["status"] in ("fail", "error"), shown
        assert all(t["status"] == "fail" for t in attacked["tests"]), shown
    elif case.expect == "full":
        assert attacked["score"] == pytest.approx(case.topic.points) and attacked["status"] == "pass", shown
    else:
        wanted = [grading.readable(prefix) for prefix in case.fails]
        expected = sorted(t["name"] for t in attacked["tests"] if any(t["name"].startswith(w) for w in wanted))
        assert expected and failed == expected, shown
    if case.says:
        told = (
            [attacked["message"]]
            if attacked["status"] == "error"
            else [t["message"] for t in attacked["tests"] if t["status"] == "fail"]
        )
        assert told and all(case.says in message for message in told), f"expected {case.says!r}: {told}"
    if case.leak:
        for text in [attacked["message"], *(t["message"] for t in attacked["tests"])]:
            assert text.count(case.leak) * len(case.leak) <= 200, (
                f"the report shows the submission's text: {text[:300]}"
            )
    if case.listens:
        port = int((tmp_path / "port").read_text())
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"something still listens on port {port}"


def test_every_case_says_what_it_does():
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))
    for case in CASES:
        assert case.expect in ("zero", "full", "fails"), case.name
        assert (case.expect == "fails") == bool(case.fails), case.name
        assert case.attack and (case.edits or case.source or case.stub), case.name
        assert case.expect != "zero" or case.stub or case.source or case.pad or case.says, case.name
