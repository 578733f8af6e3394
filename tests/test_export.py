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
    run = subprocess.run(
        [sys.executable, "-m", "conclab", "export", "gradescope", str(archive), "--topic", "01", "--topic", "02"],
        capture_output=True,
        text=True,
    )
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
    setup = subprocess.run(
        ["bash", str(root / "source" / "setup.sh")], env=env, capture_output=True, text=True, timeout=600
    )
    assert setup.returncode == 0, setup.stdout + setup.stderr
    return root


def environment(root):
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "CONCLAB_", "PYTHONPATH", "VIRTUAL_ENV"))
    }
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
    run = subprocess.run(
        [str(root / "run_autograder")], cwd=root, env=environment(root), capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads((root / "results" / "results.json").read_text())


def test_the_solutions_get_full_marks(autograder, no_process_left):
    results = grade(autograder, {"threads.py": None, "repo/exercises/02_locks/bank.py": None})
    failed = [(t["name"], t["output"][:300]) for t in results["tests"] if t["status"] != "passed"]
    assert results["score"] == 20, failed
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
    assert broken and all(t["score"] == 0 and "imports os" in t["output"] for t in broken)


def validate_classroom50_result(data, env):
    """The classroom50/result/v1 rules its runner checks."""
    assert data["schema"] == "classroom50/result/v1"
    assert data["classroom"] == env["CLASSROOM"] and data["assignment"] == env["ASSIGNMENT"]
    assert data["submission"].startswith("submit/")
    for field in ("owner", "commit", "release", "review", "datetime"):
        assert isinstance(data[field], str) and data[field]
    assert data["assignment_type"] in ("individual", "group", "team")
    for holder in [data, *data["tests"]]:
        for field in ("score", "max-score"):
            assert type(holder[field]) is int and holder[field] >= 0
        assert holder["score"] <= holder["max-score"]
    for test in data["tests"]:
        assert isinstance(test["test-name"], str) and test["test-name"] and type(test["passed"]) is bool


def test_the_classroom50_bundle_grades_a_checkout_as_its_runner_does(tmp_path, no_process_left):
    from conclab.ship import release

    bundle = tmp_path / "classroom" / "autograders" / "week-1"
    bundle.parent.mkdir(parents=True)
    run = subprocess.run(
        [sys.executable, "-m", "conclab", "export", "classroom50", str(bundle), "--topic", "01", "--topic", "02"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    checkout = tmp_path / "student"
    release.release(checkout)  # the student's repository: the template, topic 01 solved
    shutil.copy(ROOT / "solutions" / "01_threads" / "threads.py", checkout / "exercises" / "01_threads")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "CONCLAB_", "PYTHONPATH", "VIRTUAL_ENV"))
    }
    env.update(
        CLASSROOM="cs-101",
        ASSIGNMENT="week-1",
        OWNER="ada",
        ASSIGNMENT_TYPE="individual",
        SUBMISSION_TAG="submit/20261124T050000Z-abc1234",
        COMMIT_URL="https://example.test/commit",
        RELEASE_URL="https://example.test/release",
        REVIEW_URL="https://example.test/review",
        CLASSROOM50_BUNDLE_DIR=str(bundle),
        RUNNER_TEMP=str(tmp_path),
    )
    graded = subprocess.run(
        [sys.executable, str(bundle / "autograder.py")],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert graded.returncode == 0, graded.stdout + graded.stderr
    data = json.loads((checkout / "result.json").read_text())
    validate_classroom50_result(data, env)
    assert (data["score"], data["max-score"]) == (10, 20)
    threads, locks = data["tests"]
    assert threads["passed"] and threads["score"] == 10
    assert not locks["passed"] and locks["score"] == 0 and locks["graders"][0]["message"]
    body = (checkout / "release-body.md").read_text()
    assert "Score: 10 / 20" in body and "02_locks" in body
