"""The student's commands: `conclab list`, `check`, `hint` and `reset` (`watch` is in watch.py).

Progress is kept in PROGRESS_FILE at the course root (not committed): how many hints of
each topic have been shown, and the outcome of each topic's last check together with a
fingerprint of the files it checked, so that `conclab list` knows a topic's status
without running its tests again while nothing changed.

The original stubs, for `reset` and for telling "not started" from "started": `conclab
release` puts a copy of every stub beside the package (STUBS); in the course's own
repository, where exercises/ holds the stubs themselves, the committed version is the
original.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from conclab import manifest
from conclab.core import files
from conclab.core.cpus import usable_cpus
from conclab.grading import grade

PROGRESS_FILE = ".conclab-progress.json"
STUBS = "graders/conclab/stubs"  # in the student's copy of the course, written by `conclab release`

NOT_STARTED, FAILING, PASSING, MISSING, UNCHECKED = "not started", "failing", "passing", "missing", "not checked"


def module_path(topic: manifest.Topic, root: Path) -> Path:
    return root / "exercises" / topic.id / topic.filename


def original_stub(topic: manifest.Topic, root: Path) -> str | None:
    """The stub as the course hands it out, or None if no copy of it can be found."""
    shipped = root / STUBS / topic.id / topic.filename
    if shipped.is_file():
        return shipped.read_text(encoding="utf-8")
    try:
        committed = subprocess.run(
            ["git", "show", f"HEAD:exercises/{topic.id}/{topic.filename}"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return committed.stdout if committed.returncode == 0 else None


def fingerprint(topic: manifest.Topic, root: Path) -> str:
    """What a check's outcome depends on: the topic's Python files (the module and its tests)."""
    digest = hashlib.sha256()
    for path in sorted((root / "exercises" / topic.id).glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


class Progress:
    """The student's progress file.  A missing or unreadable file is a fresh start."""

    def __init__(self, root: Path):
        self.path = root / PROGRESS_FILE
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        data = data if isinstance(data, dict) else {}
        self.hints: dict[str, int] = data["hints"] if isinstance(data.get("hints"), dict) else {}
        self.checks: dict[str, dict] = data["checks"] if isinstance(data.get("checks"), dict) else {}

    def save(self) -> None:
        text = json.dumps({"hints": self.hints, "checks": self.checks}, indent=1, sort_keys=True) + "\n"
        files.replace(self.path, text)

    def hints_seen(self, topic: manifest.Topic) -> int:
        seen = self.hints.get(topic.id, 0)
        return min(seen, len(topic.hints)) if isinstance(seen, int) and seen > 0 else 0

    def last_check(self, topic: manifest.Topic, root: Path) -> dict | None:
        """The last check of the topic, if it checked exactly the files there are now."""
        check = self.checks.get(topic.id)
        if isinstance(check, dict) and check.get("fingerprint") == fingerprint(topic, root):
            return check
        return None

    def record(self, done: Check, root: Path) -> None:
        """Remember a check's outcome, unless a file changed while it ran (then it is stale)."""
        if fingerprint(done.topic, root) == done.fingerprint:
            self.checks[done.topic.id] = {
                "fingerprint": done.fingerprint,
                "status": PASSING if done.passed else FAILING,
                "passed": done.counts[0],
                "tests": done.counts[1],
            }


def status(topic: manifest.Topic, root: Path, progress: Progress) -> str:
    path = module_path(topic, root)
    if not path.is_file():
        return MISSING
    if path.read_text(encoding="utf-8", errors="replace") == original_stub(topic, root):
        return NOT_STARTED
    check = progress.last_check(topic, root)
    return check["status"] if check else UNCHECKED


def statuses(root: Path, progress: Progress) -> dict[str, str]:
    """Every topic's status, by id."""
    return {topic.id: status(topic, root, progress) for topic in manifest.topics()}


@dataclass
class Check:
    """A topic's public tests, run once, on the files `fingerprint` describes."""

    topic: manifest.Topic
    result: grade.TopicResult
    fingerprint: str

    @property
    def passed(self) -> bool:
        return self.result.status == "pass"

    @property
    def failures(self) -> list[grade.TestResult]:
        return [t for t in self.result.tests if t.status == "fail"]

    @property
    def counts(self) -> tuple[int, int]:
        """(tests passed, tests run)."""
        judged = [t for t in self.result.tests if t.status != "skip"]
        return sum(t.status == "pass" for t in judged), len(judged)


def check(topic: manifest.Topic, root: Path, progress: Progress | None = None, running: set | None = None) -> Check:
    """Run the topic's public tests on the student's module (remembering the outcome in
    `progress`, if given; `running` holds the pytest process meanwhile, for a caller that
    may stop it)."""
    before = fingerprint(topic, root)
    done = Check(topic, grade.grade_topic(topic, root / "exercises", root, running=running, tests="exercises"), before)
    if progress is not None:
        progress.record(done, root)
        progress.save()
    return done


def check_all(topics: list[manifest.Topic], root: Path, progress: Progress, on_done=None) -> None:
    """Check the topics side by side (their tests mostly wait), recording each outcome."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    if not topics:
        return
    with ThreadPoolExecutor(min(len(topics), usable_cpus() + 1)) as pool:
        for future in as_completed([pool.submit(check, topic, root) for topic in topics]):
            progress.record(future.result(), root)
            if on_done is not None:
                on_done(future.result())
    progress.save()


def next_hint(topic: manifest.Topic, progress: Progress) -> int:
    """Show one more hint of the topic (the last one stays the last); returns how many are seen."""
    seen = min(progress.hints_seen(topic) + 1, len(topic.hints))
    progress.hints[topic.id] = seen
    progress.save()
    return seen


def reset(topic: manifest.Topic, root: Path, progress: Progress, stub: str) -> None:
    """Put the original stub (original_stub's text) back."""
    path = module_path(topic, root)
    files.replace(path, stub)
    progress.checks.pop(topic.id, None)
    progress.save()
