"""Each topic's promise table (the [[promise]] entries of tests/mutants/NN_name.toml): every
promise of the lesson's task list and of the stub's docstrings, the graders that try it and
the mutants that break it, so that a promise nobody tries shows.

    [[promise]]
    id = "get-timeout"                       # what the mutants' `breaks` name
    said = "`TimeoutError` after `timeout`"  # the words of the lesson or stub that promise it
    graders = ["test_get_times_out_..."]     # the graders that try it (failure and timeout
                                             # paths, and the clean-up after them, included)

    asides = ["...", ...]                    # clauses of the task list that promise nothing

A clause is a sentence, or a part of one between semicolons, of a bullet of the lesson's
"Your task" list or of a docstring of the stub's public classes and functions.  Each clause
holds the `said` of a promise or is an aside.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

from conclab import manifest
from conclab.manifest import Topic, tomllib


@dataclass
class Promise:
    id: str
    said: str
    graders: list[str]


@dataclass
class Table:
    topic: Topic
    promises: list[Promise] = field(default_factory=list)
    asides: list[str] = field(default_factory=list)


def normal(text: str) -> str:
    """Text compared without its mark-up (bold, line breaks, indentation)."""
    return " ".join(text.replace("**", "").split())


def load(topic: Topic, root: Path | None = None) -> Table:
    path = (root or manifest.course_root()) / "tests" / "mutants" / f"{topic.id}.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    promises = [Promise(p["id"], p["said"], list(p.get("graders", []))) for p in data.get("promise", [])]
    return Table(topic, promises, list(data.get("asides", [])))


def _sentences(text: str) -> list[str]:
    """Sentences, then the parts of each between semicolons."""
    parts = []
    for sentence in re.split(r"(?<!\be\.g\.)(?<!\bi\.e\.)(?<=[.!?])\s+", normal(text)):
        parts += [p.strip() for p in sentence.split(";") if p.strip()]
    return parts


def task_bullets(topic: Topic, root: Path | None = None) -> list[str]:
    """The bullets of the lesson's "Your task" section, each on one line."""
    text = ((root or manifest.course_root()) / "exercises" / topic.id / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Your task\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    bullets: list[str] = []
    for line in (section.group(1) if section else "").splitlines():
        if line.startswith("- "):
            bullets.append(line[2:])
        elif bullets and line.startswith("  ") and line.strip():
            bullets[-1] += " " + line.strip()
        elif not line.strip() and bullets:
            bullets.append("")
    return [b for b in bullets if b]


def stub_docstrings(topic: Topic, root: Path | None = None) -> list[str]:
    """The docstrings of the stub's public classes, functions and methods."""
    path = (root or manifest.course_root()) / "exercises" / topic.id / topic.filename
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
            doc = ast.get_docstring(node)
            if doc:
                found.append(doc)
    return found


def clauses(topic: Topic, root: Path | None = None) -> list[tuple[str, str]]:
    """(where, clause) for every clause of the task list and the stub's docstrings."""
    found = [("the lesson's task list", c) for b in task_bullets(topic, root) for c in _sentences(b)]
    found += [(f"the stub {topic.filename}", c) for d in stub_docstrings(topic, root) for c in _sentences(d)]
    return found


def uncovered(table: Table, root: Path | None = None) -> list[tuple[str, str]]:
    """The clauses that hold no promise's words and are no aside."""
    saids = [normal(p.said) for p in table.promises] + [normal(a) for a in table.asides]
    return [(where, c) for where, c in clauses(table.topic, root) if not any(s in c for s in saids)]


def said_nowhere(table: Table, root: Path | None = None) -> list[str]:
    """The `said` of promises (and the asides) that neither the lesson nor the stub says."""
    text = " ".join(c for _, c in clauses(table.topic, root))
    return [s for s in [p.said for p in table.promises] + table.asides if normal(s) not in text]


def grader_names(topic: Topic, root: Path | None = None) -> set[str]:
    """The test functions of the topic's graders."""
    names = set()
    for path in ((root or manifest.course_root()) / "graders" / topic.id).glob("test_*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
                names.add(node.name)
    return names
