"""`conclab export gradescope`: unpacked into a fake /autograder, set up, and run on
submissions the way Gradescope runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from conclab import manifest

ROOT = manifest.course_root()
TOPICS = [manifest.find("01"), manifest.find("02")]


@pytest.fixture(scope="module")
def autograder(tmp_path_factory):
    """The zip unpacked as /autograder/source, and setup.sh run (AUTOGRADER_ROOT stands for /autograder)."""
    base = tmp_path_factory.mktemp("gradescope")
    archive = base / "autograder.zip"
    run = subprocess.run([sys.executable, "-m", "conclab.cli", "export", "gradescope", str(archive),
                          "--topic", "01", "--topic", "02"], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    root = base / "autograder"
    with zipfile.ZipFile(archive) as z:
        z.extractall(root / "source")
        for info in z.infolist():  # zipfile does not restore permissions
            mode = info.external_attr >> 16
            if mode:
                os.chmod(root / "source" / info.filename, mode & 0o777)
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    env = environment(root)
    setup = subprocess.run(["bash", str(root / "source" / "setup.sh")], env=env, capture_output=True, text=True,
                           timeout=600)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    return root


def environment(root):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "CONCLAB_", "PYTHONPATH", "VIRTUAL_ENV"))}
    env["AUTOGRADER_ROOT"] = str(root)
    return env


def grade(root, files: dict[str, str | None]):
    """Submit files (path in the submission -> text, or None for the topic's solution) and read results.json."""
    submission = root / "submission"
    shutil.rmtree(submission, ignore_errors=True)
    submission.mkdir()
    for path, text in files.items():
        target = submission / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if text is None:
            topic = manifest.topic_of_path(path) or next(t for t in TOPICS if t.filename == target.name)
            text = (ROOT / "solutions" / topic.id / topic.filename).read_text()
        target.write_text(text)
    run = subprocess.run([str(root / "run_autograder")], cwd=root, env=environment(root), capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads((root / "results" / "results.json").read_text())


def test_the_solutions_get_full_marks(autograder, no_process_left):
    results = grade(autograder, {"threads.py": None, "repo/exercises/02_locks/bank.py": None})
    assert results["score"] == 20
    assert all(t["status"] == "passed" for t in results["tests"])
    assert {t["name"].split(":")[0] for t in results["tests"]} == {"01_threads", "02_locks"}


def test_the_stubs_get_zero(autograder, no_process_left):
    results = grade(autograder, {})
    assert results["score"] == 0
    assert results["tests"] and all(t["score"] == 0 and t["output"] for t in results["tests"])
    assert sum(t["max_score"] for t in results["tests"]) == pytest.approx(20)


def test_a_submission_that_breaks_the_run_still_gets_results(autograder, no_process_left):
    results = grade(autograder, {"threads.py": "import os\nos._exit(0)\n", "bank.py": None})
    assert results["score"] == 10
    broken = [t for t in results["tests"] if t["name"].startswith("01_threads")]
    assert len(broken) == 1 and "ended early" in broken[0]["output"]
