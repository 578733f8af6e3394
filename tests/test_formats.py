"""What a student reads, in every format (the grade's table and "Where to look first", its
JSON report, Gradescope's results.json, `conclab check`): never pytest's raw words, never a
line of the graders' or public tests' source, never a word cut in two, the first problem
whole."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from conclab import manifest
from conclab.grading import runner
from conclab.ship import release

ROOT = manifest.course_root()
WORDS = " ".join(f"w{i:03d}" for i in range(90))  # a long text of the student's, to be cut somewhere


def _broken_solutions(folder):
    """02 whose refusals raise nothing; 03 whose get() fails with a long text."""
    for topic_id in ("02_locks", "03_condition"):
        shutil.copytree(ROOT / "solutions" / topic_id, folder / topic_id, ignore=shutil.ignore_patterns("__pycache__"))
    bank = folder / "02_locks" / "bank.py"
    text = bank.read_text(encoding="utf-8")
    text = re.sub(r"raise ValueError\(.*\)", "pass", text)
    bank.write_text(text, encoding="utf-8")
    buffer = folder / "03_condition" / "bounded_buffer.py"
    text = buffer.read_text(encoding="utf-8")
    head = "    def get(self, timeout: float | None = None) -> Any:\n"
    assert head in text
    buffer.write_text(text.replace(head, head + f"        raise RuntimeError({WORDS!r})\n"), encoding="utf-8")
    return folder


def _conclab(*args, cwd=ROOT, env=None):
    return subprocess.run(
        [sys.executable, "-m", "conclab", *args],
        cwd=cwd,
        env={**(env or runner.child_env(ROOT)), "COLUMNS": "100"},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    base = tmp_path_factory.mktemp("formats")
    impl = _broken_solutions(base / "impl")
    graded = _conclab("grade", "--impl", str(impl), "--topic", "02", "--topic", "03", "--json", str(base / "r.json"))
    _conclab(
        "grade", "--impl", str(impl), "--topic", "02", "--topic", "03", "--format", "gradescope",
        "--json", str(base / "gs.json"),
    )  # fmt: skip
    course = base / "course"
    release.release(course)
    shutil.copy(impl / "02_locks" / "bank.py", course / "exercises" / "02_locks" / "bank.py")
    checked = _conclab("check", "02", cwd=course, env=runner.child_env(course))
    return {
        "grade": graded.stdout + graded.stderr,
        "json": (base / "r.json").read_text(encoding="utf-8"),
        "gradescope": (base / "gs.json").read_text(encoding="utf-8"),
        "check": checked.stdout + checked.stderr,
    }


def _student_text(fmt: str, raw: str) -> str:
    """The messages of a JSON format, or the output as it is."""
    if fmt == "json":
        return "\n".join(t["message"] for topic in json.loads(raw)["topics"] for t in topic["tests"])
    if fmt == "gradescope":
        data = json.loads(raw)
        return "\n".join([data.get("output", "")] + [t.get("output", "") for t in data["tests"]])
    return raw


def _source_lines() -> set[str]:
    lines = set()
    for folder in ("graders", "exercises"):
        for topic_id in ("02_locks", "03_condition"):
            for path in (ROOT / folder / topic_id).glob("test_*.py"):
                lines |= {
                    line.strip() for line in path.read_text(encoding="utf-8").splitlines() if len(line.strip()) > 20
                }
    return lines


FORMATS = ["grade", "json", "gradescope", "check"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_raw_pytest_words(texts, fmt):
    text = _student_text(fmt, texts[fmt])
    assert "raised nothing" in text or fmt != "check", text[-3000:]
    for raw in ("DID NOT RAISE", "Traceback (most recent call last)", "AssertionError", "assert "):
        assert raw not in text, f"{fmt}: {raw!r} in\n{text[-3000:]}"


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_line_of_the_tests_source(texts, fmt):
    text = _student_text(fmt, texts[fmt])
    shown = {line.strip() for line in text.splitlines()}
    leaked = sorted(shown & _source_lines())
    assert not leaked, f"{fmt} shows the tests' code: {leaked[:3]}"


@pytest.mark.parametrize("fmt", ["grade", "json", "gradescope"])
def test_no_word_is_cut_in_two(texts, fmt):
    text = _student_text(fmt, texts[fmt])
    words = re.findall(r"\bw\d+", text)
    assert words, f"{fmt} does not show the student's text at all"
    assert all(re.fullmatch(r"w\d{3}", w) for w in words), f"{fmt} cuts a word: {[w for w in words if len(w) != 4]}"


def test_where_to_look_first_shows_the_whole_first_problem(texts):
    report = json.loads(texts["json"])
    shown = " ".join(texts["grade"].split("Where to look first:", 1)[1].split())
    for topic in report["topics"]:
        first = next(t for t in topic["tests"] if t["status"] == "fail")
        assert " ".join(first["message"].split()) in shown, f"{topic['id']}: {first['message']!r} not whole in\n{shown}"
