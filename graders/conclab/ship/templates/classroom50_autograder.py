#!/usr/bin/env python3
"""concurrency-lab's autograder for Classroom 50, written by `conclab export classroom50`.

Classroom 50's runner starts this script in the student's checkout, with no arguments.
It installs the course that sits beside it (course/: the grading machinery and the
hidden graders) into a virtual environment, lays the student's modules over the stubs,
runs `conclab grade` on the assignment's topics and writes ./result.json in the
classroom50/result/v1 form (and ./release-body.md): one test per topic, passed when
every grader of the topic passed, worth the topic's points.  It exits 0 whenever the
grading ran, whatever the score; a non-zero exit means the grading itself broke.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

TOPICS: list[str] = []  # the assignment's topics (filled in by the export; empty means all)
SCHEMA = "classroom50/result/v1"
BUNDLE = Path(os.environ.get("CLASSROOM50_BUNDLE_DIR") or Path(__file__).resolve().parent)
COURSE = BUNDLE / "course"


def run(*command: str, check: bool = True) -> subprocess.CompletedProcess:
    print("+", " ".join(command), flush=True)
    return subprocess.run(command, check=check)


def grade(checkout: Path, work: Path) -> dict:
    venv = work / "venv"
    run(sys.executable, "-m", "venv", str(venv))
    python = str(venv / ("Scripts" if os.name == "nt" else "bin") / "python")
    run(python, "-m", "pip", "install", "-q", "-e", str(COURSE))
    exercises = work / "exercises"
    shutil.copytree(COURSE / "exercises", exercises)
    run(python, "-m", "conclab", "export", "place", str(checkout), str(exercises))
    report = work / "report.json"
    selection = [arg for topic in TOPICS for arg in ("--topic", topic)]
    graded = run(
        python, "-m", "conclab", "grade", "--impl", str(exercises), "--json", str(report), *selection, check=False
    )
    if graded.returncode not in (0, 1) or not report.is_file():
        raise RuntimeError(f"conclab grade could not run (exit status {graded.returncode})")
    return json.loads(report.read_text(encoding="utf-8"))


def result(report: dict) -> dict:
    env = os.environ.get
    tests = []
    for topic in report["topics"]:
        points = int(round(topic["max_score"]))
        tests.append(
            {
                "test-name": f"{topic['id']}: {topic['title']}",
                "passed": topic["status"] == "pass",
                "score": min(points, int(round(topic["score"]))),
                "max-score": points,
                "message": topic["message"],
                "graders": [
                    {"name": t["name"], "passed": t["status"] == "pass", "message": t["message"]}
                    for t in topic["tests"]
                ],
            }
        )
    return {
        "schema": SCHEMA,
        "classroom": env("CLASSROOM", "local"),
        "assignment": env("ASSIGNMENT", "local"),
        "owner": env("OWNER") or env("USERNAME") or "local",
        "assignment_type": env("ASSIGNMENT_TYPE", "individual"),
        "submission": env("SUBMISSION_TAG", "submit/local"),
        "commit": env("COMMIT_URL", "local"),
        "release": env("RELEASE_URL", "local"),
        "review": env("REVIEW_URL", "local"),
        "datetime": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "score": sum(t["score"] for t in tests),
        "max-score": sum(t["max-score"] for t in tests),
        "tests": tests,
    }


def release_body(data: dict) -> str:
    lines = [
        f"**Score: {data['score']} / {data['max-score']}**",
        "",
        "| topic | result | points |",
        "| --- | --- | --- |",
    ]
    for test in data["tests"]:
        lines.append(
            f"| {test['test-name']} | {'PASS' if test['passed'] else 'FAIL'} | {test['score']} / {test['max-score']} |"
        )
    for test in data["tests"]:
        failing = [g for g in test["graders"] if not g["passed"]]
        if test["message"] or failing:
            lines += ["", f"### {test['test-name']}", ""]
            lines += [test["message"]] if test["message"] else []
            for index, grader in enumerate(failing[:5]):  # the first problem whole, the others by their first line
                text = (grader["message"] or "failed").strip().splitlines() or ["failed"]
                lines.append(f"- **{grader['name']}**: " + "\n  ".join(text if index == 0 else text[:1]))
    return "\n".join(lines) + "\n"


def main() -> int:
    checkout = Path.cwd()
    work = Path(tempfile.mkdtemp(prefix="conclab-", dir=os.environ.get("RUNNER_TEMP")))
    try:
        data = result(grade(checkout, work))
    except (OSError, ValueError, RuntimeError, subprocess.CalledProcessError) as error:
        print(f"concurrency-lab: grading could not run: {error}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    (checkout / "result.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    (checkout / "release-body.md").write_text(release_body(data), encoding="utf-8")
    print(f"concurrency-lab: {data['score']} / {data['max-score']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
