"""`conclab dev new`: a new topic's files, in a scratch copy of the course, that the course's
own tests recognise and that `conclab dev check` fails only for the content still to write."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conclab import manifest

ROOT = manifest.course_root()


@pytest.fixture
def scratch(tmp_path) -> Path:
    """A copy of the course, whose own package the commands below run."""
    copy = tmp_path / "course"
    shutil.copytree(
        ROOT,
        copy,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "__pycache__", "*.egg-info", ".pytest_cache", ".conclab-progress.json"
        ),
    )
    return copy


def in_copy(copy: Path, *command: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "CONCLAB_"))}
    env.update(PYTHONPATH=str(copy / "graders"), CONCLAB_ROOT=str(copy))
    return subprocess.run(
        [sys.executable, *command],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def test_a_new_topic_is_recognised_and_fails_only_for_its_missing_content(scratch):
    made = in_copy(scratch, "-m", "conclab", "dev", "new", "15_example", "--module", "example")
    assert made.returncode == 0, made.stdout + made.stderr
    for path in (
        "exercises/15_example/README.md",
        "exercises/15_example/example.py",
        "exercises/15_example/test_example.py",
        "solutions/15_example/example.py",
        "graders/15_example/test_example.py",
        "tests/mutants/15_example.toml",
    ):
        assert (scratch / path).is_file(), path
    listed = in_copy(scratch, "-c", "from conclab import manifest; print(manifest.topics()[-1])")
    assert "15_example" in listed.stdout and "module='example'" in listed.stdout, listed.stdout + listed.stderr
    assert "| `15_example` | `example.py` |" in (scratch / "README.md").read_text(encoding="utf-8")
    assert in_copy(scratch, "-m", "conclab", "dev", "workflow", "--check").returncode == 0
    # The course's checks of every topic's parts, API and lesson take it as one of theirs.
    course = in_copy(scratch, "-m", "pytest", "tests/test_course.py", "-q", "-p", "no:cacheprovider")
    assert course.returncode == 0, course.stdout[-3000:]
    collected = in_copy(scratch, "-m", "pytest", "tests/test_course.py", "--collect-only", "-q", "-k", "15_example")
    assert collected.stdout.count("[15_example]") == 4, collected.stdout
    # Its stub fails its graders; its solution is empty, so only the solutions' check fails.
    checked = in_copy(scratch, "-m", "conclab", "dev", "check", "--topic", "15")
    assert checked.returncode == 1, checked.stdout + checked.stderr
    verdicts = [line for line in checked.stdout.splitlines() if line.startswith(("ok  ", "FAIL "))]
    assert [line.split()[0:3] for line in verdicts] == [["FAIL", "solutions", "pass"], ["ok", "stub", "15_example"]]
    assert "solve (the reference solution) is not written yet" in checked.stdout


@pytest.mark.parametrize(
    "args, complaint",
    [
        (["15_example", "--module", "threads"], "the module threads belongs to 01_threads"),
        (["01_again", "--module", "again"], "topic number 01 is taken by 01_threads"),
        (["15", "--module", "example"], "is not of the form NN_name"),
        (["15_example", "--module", "queue"], "not a usable module name"),
    ],
)
def test_a_clash_is_refused_and_nothing_changes(scratch, args, complaint):
    before = {p: p.read_bytes() for p in scratch.rglob("*") if p.is_file()}
    made = in_copy(scratch, "-m", "conclab", "dev", "new", *args)
    assert made.returncode == 2 and complaint in made.stderr, made.stdout + made.stderr
    assert {p: p.read_bytes() for p in scratch.rglob("*") if p.is_file()} == before


def test_a_topic_between_two_others_goes_in_order(scratch):
    """Inserting a number that is free in the middle (renumbered topics elsewhere): the manifest
    keeps its order and stays valid."""
    manifest_file = scratch / "graders" / "conclab" / "topics.toml"
    text = manifest_file.read_text(encoding="utf-8").replace('id = "14_message_passing"', 'id = "16_message_passing"')
    manifest_file.write_text(text, encoding="utf-8")
    for kind in ("exercises", "solutions", "graders"):
        (scratch / kind / "14_message_passing").rename(scratch / kind / "16_message_passing")
    made = in_copy(scratch, "-m", "conclab", "dev", "new", "15_example", "--module", "example", "--title", "An example")
    assert made.returncode == 0, made.stdout + made.stderr
    ids = in_copy(scratch, "-c", "from conclab import manifest; print([t.id for t in manifest.topics()][-3:])")
    assert ids.stdout.strip() == "['13_futures', '15_example', '16_message_passing']", ids.stdout + ids.stderr
