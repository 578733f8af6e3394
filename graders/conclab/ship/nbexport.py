"""`conclab export nbgrader OUT`: the course as nbgrader assignments, one per topic.

OUT is an nbgrader course folder: nbgrader_config.py, README.md and source/NN_topic/NN_topic.ipynb.
Each notebook holds, in order:

- the lesson (markdown) and how to work in the notebook;
- the answer cell (an autograded answer): `%%writefile module.py`, then the reference solution
  between BEGIN SOLUTION and END SOLUTION, then the stub inside a string literal that the
  solution region opens and closes.  The source notebook runs the solution; the release
  (regions replaced by the empty code stub that nbgrader_config.py sets) holds exactly the
  exercise's stub, buggy starting code and TODOs included;
- the public tests, written to test_module.py by a read-only cell, and a cell that runs them;
- one autograder test cell per hidden grader (`### BEGIN HIDDEN TESTS`), worth the grader's
  share of the topic's points; the first carries the graders' source and runs them all
  (in one pytest process, as `conclab grade` does), each cell reports its own test.

The tests run through conclab.ship.notebook, so the course (concurrency-lab) must be installed
where the notebooks run.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from conclab import manifest
from conclab.engine import report
from conclab.grading import grade, runner
from conclab.templating import fill

TEMPLATES = Path(__file__).with_name("templates")

MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


def cell_timeout(topics: list[manifest.Topic]) -> int:
    """nbgrader's time limit for one cell: above the longest test run conclab.ship.notebook allows
    (the first grader cell of a topic runs all of the topic's graders)."""
    return int(max(grade.topic_timeout(t) for t in topics) + 30)


def _md(cell_id: str, text: str) -> dict:
    return {"cell_type": "markdown", "id": cell_id, "metadata": {}, "source": text}


def _code(cell_id: str, text: str, *, grade=False, solution=False, locked=False, points=None) -> dict:
    meta = {
        "grade": grade,
        "grade_id": cell_id,
        "locked": locked,
        "schema_version": 3,
        "solution": solution,
        "task": False,
    }
    if points is not None:
        meta["points"] = points
    return {
        "cell_type": "code",
        "execution_count": None,
        "id": cell_id,
        "metadata": {"nbgrader": meta},
        "outputs": [],
        "source": text,
    }


def _literal(text: str) -> str:
    """`text` as a Python expression an instructor can still read: one string per line."""
    return "(\n" + "".join(f"    {line!r}\n" for line in text.splitlines(keepends=True)) + ")"


def answer_source(topic: manifest.Topic, solution: str, stub: str) -> str:
    """The answer cell of the source notebook: the solution runs, the stub is kept in a
    string; nbgrader's release keeps only the stub (see templates/nbgrader_config.py)."""
    quote = "'''" if "'''" not in stub else '"""'
    if quote in stub or stub.rstrip("\n").endswith("\\"):
        raise manifest.ManifestError(f"{topic.id}: the stub cannot be held in a string literal")
    for text in (solution, stub):
        if any(marker in text for marker in MARKERS):
            raise manifest.ManifestError(f"{topic.id}: the module contains an nbgrader marker")
    return (
        f"%%writefile {topic.filename}\n### BEGIN SOLUTION\n{solution.rstrip()}\n\n\n"
        f"# What students start from (the release keeps only this; here it is a string and does not run):\n"
        f"r{quote}\n### END SOLUTION\n{stub.rstrip()}\n### BEGIN SOLUTION\n{quote}\n### END SOLUTION"
    )


def released_module(answer: str) -> str:
    """What the release's answer cell writes to the module file, as nbgrader's ClearSolutions
    with an empty code stub produces it (used by the tests)."""
    lines, inside = [], False
    for line in answer.split("\n"):
        if "BEGIN SOLUTION" in line:
            inside = True
            lines.append("")
        elif "END SOLUTION" in line:
            inside = False
        elif not inside:
            lines.append(line)
    return "\n".join(lines[1:])  # without the %%writefile line


def lesson(topic: manifest.Topic, root: Path) -> str:
    """The topic's lesson, its commands for a checkout of the course replaced by the notebook's way."""
    text = (root / "exercises" / topic.id / "README.md").read_text(encoding="utf-8")
    return re.sub(
        r"## Run the tests\n+```\n.*?```\n",
        "## Run the tests\n\nRun the cells under *Public tests* "
        "below: they check your module the way `pytest` does in a checkout of the course.\n",
        text,
        count=1,
        flags=re.S,
    )


def _how_to(topic: manifest.Topic) -> str:
    processes = (
        "\n\n**Processes.** Everything a child process runs must live in the module, not in a notebook "
        "cell: a child started with *spawn* or *forkserver* (the default on Windows, on macOS and, from "
        "Python 3.14, on Linux) imports your module by name, and cannot see a function defined in the "
        "notebook, which lives in `__main__`. That is why your code is saved to a file."
    )
    return (
        f"## Your turn\n\nThe next cell is your module. Edit it, then run it (Shift-Enter): it saves your code "
        f"to `{topic.filename}` next to this notebook. The tests import that file, and so can your own "
        f"experiments in a new cell:\n\n```python\nimport importlib, {topic.module}\n"
        f"importlib.reload({topic.module})  # picks up your latest save\n```"
        f"{processes if topic.processes else ''}\n\n"
        f"Then run the public tests below. The cells after them are graded: each reports a hidden test, "
        f"run in a process of its own with a time limit of {topic.budget:g} s, so a deadlock fails that "
        f"test instead of freezing the notebook."
    )


def collect_graders(root: Path, topics: list[manifest.Topic]) -> dict[str, list[dict]]:
    """The grader tests of each topic (nodeid, name, weight), as pytest collects them."""
    with tempfile.TemporaryDirectory(prefix="conclab-nbexport-") as tmp:
        report_path = Path(tmp) / "collected.jsonl"
        env = runner.child_env(root)
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                *[f"graders/{t.id}" for t in topics],
                "--collect-only",
                "-q",
                "-p",
                "no:cacheprovider",
                f"--impl={root / 'solutions'}",
                f"--conclab-report={report_path}",
            ],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        collected, _, _ = report.read(report_path)
    if run.returncode != 0 or not collected:
        raise manifest.ManifestError(f"collecting the graders failed:\n{run.stdout[-2000:]}{run.stderr[-2000:]}")
    by_topic: dict[str, list[dict]] = {t.id: [] for t in topics}
    for test in collected:
        topic = manifest.topic_of_path(test["nodeid"].split("::")[0])
        by_topic[topic.id].append(test)
    return by_topic


def _points(topic: manifest.Topic, tests: list[dict]) -> list[float]:
    """The topic's points split by weight, rounded so that they add up exactly."""
    total = sum(float(t.get("weight", 1.0)) for t in tests)
    shares = [round(topic.points * float(t.get("weight", 1.0)) / total, 3) for t in tests]
    shares[-1] = round(topic.points - sum(shares[:-1]), 3)
    return shares


def topic_notebook(topic: manifest.Topic, root: Path, graders: list[dict]) -> dict:
    read = lambda *parts: (root.joinpath(*parts)).read_text(encoding="utf-8")  # noqa: E731
    stub = read("exercises", topic.id, topic.filename)
    solution = read("solutions", topic.id, topic.filename)
    public = f"test_{topic.module}.py"
    handle = f"GRADERS_{topic.number}"
    cells = [
        _md("lesson", lesson(topic, root)),
        _md("how-to", _how_to(topic)),
        _code("answer", answer_source(topic, solution, stub), solution=True),
        _md(
            "public-tests-intro",
            "## Public tests\n\nThe first cell saves the public tests to "
            f"`{public}`; the second runs them on your `{topic.filename}`.",
        ),
        _code("public-tests", f"%%writefile {public}\n{read('exercises', topic.id, public).rstrip()}", locked=True),
        _code("run-public-tests", f"from conclab.ship import notebook\n\nnotebook.check({topic.id!r})", locked=True),
        _md(
            "graded-intro",
            f"## Graded tests ({topic.points} points)\n\nEach cell below runs one hidden test "
            "when your notebook is graded. Its first line says what it checks.",
        ),
    ]
    source = read("graders", topic.id, public)
    for i, (test, points) in enumerate(zip(graders, _points(topic, graders))):
        setup = (
            f"from conclab.ship import notebook\n\n{handle} = notebook.graders({topic.id!r}, {_literal(source)})\n"
            if i == 0
            else ""
        )
        text = (
            f"# Graded by a hidden test: {grade.readable(test['name'])}\n### BEGIN HIDDEN TESTS\n{setup}"
            f"{handle}.check({test['name']!r})\n### END HIDDEN TESTS"
        )
        cells.append(_code(f"grader-{i + 1:02d}", text, grade=True, locked=True, points=points))
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def export(out: Path, topics: list[manifest.Topic], root: Path | None = None) -> None:
    root = root or manifest.course_root()
    graders = collect_graders(root, topics)
    notebooks = {t.id: topic_notebook(t, root, graders[t.id]) for t in topics}  # every check before anything is written
    out.mkdir(parents=True)
    (out / "nbgrader_config.py").write_text(
        fill(TEMPLATES / "nbgrader_config.py.tmpl", timeout=cell_timeout(topics)), encoding="utf-8"
    )
    (out / "README.md").write_text(fill(TEMPLATES / "nbgrader-README.md"), encoding="utf-8")
    for topic_id, nb in notebooks.items():
        folder = out / "source" / topic_id
        folder.mkdir(parents=True)
        (folder / f"{topic_id}.ipynb").write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
