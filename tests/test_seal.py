"""What a grading run may see (grading/seal.py): of a submission, each topic's module file
alone, if it is a regular file of a sane size; of the course, a read-only copy of the
graders as they were when grading began, which tells afterwards whether it was changed."""

from __future__ import annotations

import os
import shutil
import stat
import threading

import pytest

from conclab import manifest
from conclab.grading import seal

ROOT = manifest.course_root()
THREADS = manifest.find("01")


@pytest.fixture
def submission(tmp_path):
    folder = tmp_path / "submission"
    (folder / THREADS.id).mkdir(parents=True)
    return folder


def taken(submission, tmp_path):
    into = tmp_path / "taken"
    into.mkdir(mode=0o700)
    return seal.take(submission, THREADS, into), into / THREADS.id / THREADS.filename


def test_the_module_file_is_copied_alone_into_a_private_folder(submission, tmp_path):
    module = submission / THREADS.id / THREADS.filename
    module.write_text("VALUE = 1\n")
    (submission / THREADS.id / "helper.py").write_text("")
    refused, copy = taken(submission, tmp_path)
    assert refused == ""
    assert copy.read_text() == "VALUE = 1\n"
    assert sorted(p.name for p in copy.parent.iterdir()) == [THREADS.filename]
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert stat.S_IMODE(copy.parent.stat().st_mode) & 0o077 == 0


@pytest.mark.parametrize(
    "make, says",
    [
        (lambda p: p.symlink_to(ROOT / "solutions" / THREADS.id / THREADS.filename), "is a symbolic link, not a file"),
        (lambda p: p.symlink_to(p.with_name("gone.py")), "is a symbolic link, not a file"),
        (lambda p: p.mkdir(), "is a folder, not a file"),
        (lambda p: os.mkfifo(p), "is a named pipe, not a file"),
        (lambda p: p.write_text("#" * (THREADS.max_size + 1)), f"larger than {THREADS.max_size:,} bytes"),
        (lambda p: None, "There is no 01_threads/threads.py"),
    ],
    ids=["link to the solution", "dangling link", "folder", "named pipe", "too large", "missing"],
)
def test_anything_but_a_regular_file_is_refused_without_waiting(submission, tmp_path, make, says):
    make(submission / THREADS.id / THREADS.filename)
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.update(result=taken(submission, tmp_path)), daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "take() blocked"
    refused, copy = outcome["result"]
    assert says in refused
    assert not copy.exists()


def test_a_module_of_exactly_the_largest_size_is_taken(submission, tmp_path):
    (submission / THREADS.id / THREADS.filename).write_text("#" * THREADS.max_size)
    refused, copy = taken(submission, tmp_path)
    assert refused == "" and copy.stat().st_size == THREADS.max_size


def test_the_snapshot_holds_the_graders_and_nothing_a_student_could_use_or_add():
    snapshot = seal.Snapshot.of(ROOT)
    names = set(snapshot.files)
    assert "graders/conclab/engine/plugin.py" in names and f"graders/{THREADS.id}/test_threads.py" in names
    assert "pyproject.toml" in names
    assert not any(n.startswith(("solutions/", "exercises/", "tests/")) for n in names)
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)


def test_a_copy_is_read_only_and_tells_what_was_changed_in_it(tmp_path):
    snapshot = seal.Snapshot.of(ROOT)
    copy = snapshot.write(tmp_path / "course")
    plugin = copy / "graders" / "conclab" / "engine" / "plugin.py"
    assert not os.access(plugin, os.W_OK) or os.geteuid() == 0
    assert stat.S_IMODE(plugin.stat().st_mode) == 0o444
    assert snapshot.changed(copy) == []
    (copy / "graders" / "conclab" / "__pycache__").mkdir(mode=0o755)  # bytecode caches are not the course
    (copy / "graders" / "conclab" / "__pycache__" / "x.pyc").write_bytes(b"")
    assert snapshot.changed(copy) == []
    plugin.chmod(0o644)
    plugin.write_text("# nothing\n")
    (copy / "graders" / "conclab" / "engine").chmod(0o755)
    (copy / "graders" / "conclab" / "engine" / "extra.py").write_text("")
    (copy / "pyproject.toml").chmod(0o644)
    (copy / "pyproject.toml").unlink()
    assert snapshot.changed(copy) == [
        "graders/conclab/engine/extra.py",
        "graders/conclab/engine/plugin.py",
        "pyproject.toml",
    ]
    with pytest.raises(seal.SealError, match="changed while grading went on"):
        snapshot.check(copy)
    seal.remove(copy)
    assert not copy.exists()


def test_grade_all_stops_when_the_course_changed_after_grading_began(tmp_path, monkeypatch):
    """A grader changed on disk while a class is graded (by whatever means): no submission
    after it is graded with what was written; grade-all stops and says why."""
    from conclab.grading import gradeall, runner

    course = tmp_path / "course"
    shutil.copytree(ROOT / "graders", course / "graders", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(ROOT / "pyproject.toml", course / "pyproject.toml")
    (course / "exercises").mkdir()
    grader = course / "graders" / THREADS.id / "test_threads.py"
    subs = tmp_path / "submissions"
    for name in ("ann", "bob", "cid"):
        shutil.copytree(ROOT / "exercises" / THREADS.id, subs / name / THREADS.id)
    graded = []

    def run(command, cwd, env, timeout, running, **pipes):
        graded.append(command)
        grader.write_text("def test_x():\n    pass\n")  # as if the first submission had done it
        return 1, ""

    monkeypatch.setenv("CONCLAB_ROOT", str(course))
    monkeypatch.setattr(runner, "run_in_own_group", run)
    out = tmp_path / "grades.csv"
    with pytest.raises(seal.SealError, match="changed while grading went on") as raised:
        gradeall.grade_all(subs, out, [THREADS], jobs=1)
    assert "test_threads.py" in str(raised.value)
    assert len(graded) == 1 and not out.exists()
