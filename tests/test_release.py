"""`conclab release OUT`: the student template holds no solution and no hidden grader,
and works on its own."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conclab import manifest
from conclab.core import machine
from conclab.ship import release

ROOT = manifest.course_root()


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    out = tmp_path_factory.mktemp("release") / "course"
    release.release(out)
    return out


def contents(folder):
    return {p.read_bytes() for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def test_no_solution_and_no_hidden_grader_is_shipped(template):
    shipped = {p.relative_to(template).as_posix(): p.read_bytes() for p in template.rglob("*") if p.is_file()}
    assert not (template / "solutions").exists() and not (template / "tests").exists()
    assert {p.split("/")[1] for p in shipped if p.startswith("graders/")} == {"conclab"}
    secret = contents(ROOT / "solutions") | set().union(*(contents(ROOT / "graders" / t.id) for t in manifest.topics()))
    leaked = [path for path, data in shipped.items() if data in secret]
    assert not leaked, f"solution or grader files in the template: {leaked}"
    for topic in manifest.topics():  # each stub is shipped as it is, and differs from its solution
        stub = template / "exercises" / topic.id / topic.filename
        assert stub.read_bytes() == (ROOT / "exercises" / topic.id / topic.filename).read_bytes()
        assert stub.read_bytes() != (ROOT / "solutions" / topic.id / topic.filename).read_bytes()


def test_the_template_has_a_student_readme_and_the_workflow(template):
    readme = (template / "README.md").read_text()
    assert "pytest exercises/01_threads" in readme and "## For students" in readme
    assert "## For instructors" not in readme and "solutions/" not in readme
    assert (template / ".github" / "workflows" / "classroom.yml").is_file()


def test_the_template_installs_and_runs_the_public_tests_on_its_own(template, no_process_left):
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "CONCLAB_", "PYTHONPATH", "VIRTUAL_ENV"))
    }
    venv = template / ".venv"
    python = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    with machine.share(alone=False):  # a burst of CPU: the timing graders of other tests wait for it
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env)
        install = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "-e", "."],
            cwd=template,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert install.returncode == 0, install.stdout + install.stderr
    run = subprocess.run(
        [str(python), "-m", "pytest", "exercises/03_condition"],
        cwd=template,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 1, run.stdout + run.stderr  # the stub fails its tests; nothing else goes wrong
    assert " failed" in run.stdout and " error" not in run.stdout.splitlines()[-1]
    assert str(template / "exercises") in run.stdout  # the template's own exercises, not the course's


def test_release_into_an_existing_folder_is_refused(tmp_path):
    (tmp_path / "course").mkdir()
    run = subprocess.run(
        [sys.executable, "-m", "conclab", "release", str(tmp_path / "course")], capture_output=True, text=True
    )
    assert run.returncode == 2 and "already exists" in run.stderr
    assert list((tmp_path / "course").iterdir()) == []
