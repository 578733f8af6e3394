"""`conclab export nbgrader`: the course as nbgrader assignments, run through the real nbgrader
(generate_assignment, validate, autograde) on submissions made the way a student makes them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conclab import manifest
from conclab.core import machine
from conclab.ship import nbexport

pytest.importorskip(
    "nbgrader",
    reason='nbgrader is not installed; the README\'s test command installs it (pip install -e ".[nbgrader]")',
)

ROOT = manifest.course_root()
TOPICS = manifest.topics()
DEADLOCKED = manifest.find("07")
UNTOUCHED = [manifest.find(n) for n in ("03", "11", "13")]
# nbgrader runs the `alembic` command of its own environment: that environment's bin comes first.
ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
    "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
}
# Every call of the module blocks for ever on a lock that is already held.
DEADLOCK = (
    "import threading\n\n_held = threading.Lock()\n_held.acquire()\n\n\n"
    "def dine(forks, meals, eat):\n    _held.acquire()\n\n\n"
    "def transfer(src, dst, amount):\n    _held.acquire()\n"
)


def nbgrader(course: Path, *args: str, timeout: float) -> subprocess.CompletedProcess:
    run = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=course,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{run.stdout[-3000:]}\n{run.stderr[-5000:]}"
    return run


def cells(path: Path) -> dict[str, dict]:
    notebook = json.loads(path.read_text(encoding="utf-8"))
    return {c["metadata"].get("nbgrader", {}).get("grade_id", c.get("id")): c for c in notebook["cells"]}


def text(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The exported course, every topic released with the real `nbgrader generate_assignment`."""
    out = tmp_path_factory.mktemp("nbgrader") / "course"
    with machine.share(alone=False):  # a burst of CPU: the timing graders of other tests wait for it
        export = subprocess.run(
            [sys.executable, "-m", "conclab", "export", "nbgrader", str(out)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert export.returncode == 0, export.stdout + export.stderr
        nbgrader(out, "generate_assignment", "*", timeout=600)
    return out


def test_each_release_holds_the_stub_and_no_hidden_test(course):
    for topic in TOPICS:
        source = cells(course / "source" / topic.id / f"{topic.id}.ipynb")
        release = cells(course / "release" / topic.id / f"{topic.id}.ipynb")
        answer = text(release["answer"])
        assert answer.startswith(f"%%writefile {topic.filename}\n")
        stub = (ROOT / "exercises" / topic.id / topic.filename).read_text(encoding="utf-8")
        assert answer.split("\n", 1)[1].strip() == stub.strip(), f"{topic.id}: the release is not the stub"
        assert nbexport.released_module(text(source["answer"])).strip() == stub.strip()
        graded = [c for c in release.values() if c["metadata"].get("nbgrader", {}).get("grade")]
        assert graded and all("HIDDEN" not in text(c) and ".check(" not in text(c) for c in graded), topic.id
        assert sum(c["metadata"]["nbgrader"]["points"] for c in graded) == pytest.approx(topic.points)
        assert text(release["public-tests"]) == text(source["public-tests"])
        assert "## Run the tests" in text(release["lesson"]) and "pytest exercises" not in text(release["lesson"])


def test_a_release_made_after_running_the_source_carries_no_solution(course):
    """Running a source notebook (nbgrader validate does) writes the solution module beside it."""
    topic = TOPICS[1]
    folder = course / "source" / topic.id
    (folder / topic.filename).write_text((ROOT / "solutions" / topic.id / topic.filename).read_text())
    (folder / f"test_{topic.module}.py").write_text("")
    try:
        nbgrader(course, "generate_assignment", topic.id, "--force", timeout=300)
    finally:
        (folder / topic.filename).unlink()
        (folder / f"test_{topic.module}.py").unlink()
    assert [p.name for p in (course / "release" / topic.id).iterdir()] == [f"{topic.id}.ipynb"]


def test_source_notebooks_pass_nbgrader_validate(course):
    """A topic of threads and a topic of processes (the solved submission below shows every
    topic's solution passing its notebook's tests; `nbgrader validate source/*/*.ipynb` is
    the instructor's check of them all)."""
    notebooks = [f"source/{t.id}/{t.id}.ipynb" for t in (manifest.find("02"), manifest.find("09"))]
    run = nbgrader(course, "validate", *notebooks, timeout=900)
    output = run.stdout + run.stderr
    assert output.count("Success! Your notebook passes all the tests.") == len(notebooks), output[-5000:]


def submit(course: Path, student: str, modules: dict[str, str | None]) -> None:
    """A student's submission: the released notebooks `modules` names, each answer cell holding
    `modules[topic id]` as the student typed it (None: left as released)."""
    for topic in [t for t in TOPICS if t.id in modules]:
        notebook = json.loads((course / "release" / topic.id / f"{topic.id}.ipynb").read_text(encoding="utf-8"))
        if modules[topic.id] is not None:
            for cell in notebook["cells"]:
                if cell["metadata"].get("nbgrader", {}).get("grade_id") == "answer":
                    cell["source"] = f"%%writefile {topic.filename}\n{modules[topic.id]}"
        folder = course / "submitted" / student / topic.id
        folder.mkdir(parents=True)
        (folder / f"{topic.id}.ipynb").write_text(json.dumps(notebook), encoding="utf-8")


def written_by_notebooks(folder: str, names: list[str]) -> list[str]:
    """The modules and tests that running a source notebook wrote beside it (not the config)."""
    return [name for name in names if name.endswith(".py") and name != "nbgrader_config.py"]


def scores_of(course: Path, student: str) -> dict[str, float]:
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        scores = {}
        for topic in TOPICS:
            try:
                scores[topic.id] = gradebook.find_submission(topic.id, student).score
            except MissingEntry:
                scores[topic.id] = None  # not handed in
        return scores


@pytest.mark.long
def test_autograde_gives_solutions_full_marks_stubs_zero_and_a_deadlock_costs_its_topic(
    course, tmp_path, no_process_left
):
    from concurrent.futures import ThreadPoolExecutor

    solutions = {t.id: (ROOT / "solutions" / t.id / t.filename).read_text(encoding="utf-8") for t in TOPICS}
    # The deadlocked student handed in three topics, one of which deadlocks in every call.
    deadlocked = {t.id: solutions[t.id] for t in (TOPICS[0], manifest.find("12"))}
    # The untouched release of a thread topic and of two process topics whose stubs wait out
    # bounded calls (every stub failing every grader is tests/test_solutions_and_stubs.py's).
    untouched = {t.id: None for t in UNTOUCHED}
    submissions = {"solved": solutions, "untouched": untouched, "deadlocked": {**deadlocked, DEADLOCKED.id: DEADLOCK}}
    courses = {}
    for student, modules in submissions.items():  # a copy of the course each, graded side by side
        courses[student] = Path(shutil.copytree(course, tmp_path / student, ignore=written_by_notebooks))
        submit(courses[student], student, modules)

    def autograde(student: str) -> float:
        started = time.monotonic()
        nbgrader(courses[student], "autograde", "*", "--student", student, "--create", timeout=1800)
        return time.monotonic() - started

    with ThreadPoolExecutor(len(courses)) as pool:
        took = dict(zip(courses, pool.map(autograde, courses)))
    print(f"autograde, in seconds: {took}")
    scores = {student: scores_of(folder, student) for student, folder in courses.items()}
    assert scores["solved"] == {t.id: pytest.approx(t.points) for t in TOPICS}
    assert scores["untouched"] == {t.id: 0 if t.id in untouched else None for t in TOPICS}
    assert scores["deadlocked"] == {
        t.id: 0 if t is DEADLOCKED else pytest.approx(t.points) if t.id in deadlocked else None for t in TOPICS
    }
    # The stubs fail by themselves, never by running out of time.
    for topic in UNTOUCHED:
        notebook = cells(courses["untouched"] / "autograded" / "untouched" / topic.id / f"{topic.id}.ipynb")
        text_out = json.dumps([c.get("outputs", []) for c in notebook.values()])
        assert "longer than its time budget" not in text_out and "did not finish in time" not in text_out, topic.id
    # Each of the deadlocked topic's graders fails, saying where the threads wait.
    report = cells(courses["deadlocked"] / "autograded" / "deadlocked" / DEADLOCKED.id / f"{DEADLOCKED.id}.ipynb")
    graded = [c for c in report.values() if c["metadata"].get("nbgrader", {}).get("grade")]
    for cell in graded:
        errors = [o["evalue"] for o in cell["outputs"] if o.get("output_type") == "error"]
        assert errors and f"waiting to acquire a lock at {DEADLOCKED.filename}" in errors[0], cell["outputs"]
