"""The result file a grading run writes for `conclab grade` (pytest --conclab-report FILE).

One JSON object per line, written as the run goes, so that whatever happens later (a
crash, an os._exit in student code, a run stopped from outside) the tests graded so far
keep their result:

    {"kind": "collected", "tests": [{"nodeid", "name", "weight"}, ...]}
    {"kind": "test", "nodeid", "outcome": "passed" | "failed" | "skipped", "duration", "message"}
    {"kind": "complete", "exitstatus": 0}

A run whose file has no "complete" line ended early.  Messages are the ones a student
reads: a grader's own failure text, or the student's exception and where it was raised.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from conclab.core import diagnose

MAX_MESSAGE = 4000


class Writer:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._file = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - open for the whole run

    def _line(self, record: dict[str, Any]) -> None:
        if self._file.closed:
            return
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def collected(self, tests: list[dict[str, Any]]) -> None:
        self._line({"kind": "collected", "tests": tests})

    def test(self, nodeid: str, outcome: str, duration: float, message: str) -> None:
        """One test's result, once it has ended (setup, call and tear-down together)."""
        self._line(
            {
                "kind": "test",
                "nodeid": nodeid,
                "outcome": outcome,
                "duration": round(duration, 3),
                "message": message[:MAX_MESSAGE],
            }
        )

    def complete(self, exitstatus: int) -> None:
        self._line({"kind": "complete", "exitstatus": exitstatus})
        self._file.close()


def read(path: str | os.PathLike) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], int | None]:
    """(collected tests, results by nodeid, exit status or None if the run did not complete)."""
    collected: list[dict[str, Any]] = []
    results: dict[str, dict[str, Any]] = {}
    exitstatus = None
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return collected, results, None
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut short by a crash
        if record.get("kind") == "collected":
            collected = record.get("tests", [])
        elif record.get("kind") == "test":
            results[record["nodeid"]] = record  # a later line for the same test wins
        elif record.get("kind") == "complete":
            exitstatus = record.get("exitstatus")
    return collected, results, exitstatus


def message_of(excinfo: Any, longreprtext: str) -> str:
    """What a student should read about a failure: the graders' own text as it is; for an
    exception from the student's code, its type, text and the line it came from."""
    if excinfo is None:
        return longreprtext.strip()
    import pytest

    value = excinfo.value
    if isinstance(value, pytest.fail.Exception) or isinstance(value, pytest.skip.Exception):
        return str(getattr(value, "msg", value)).strip()
    if isinstance(value, AssertionError):
        text = str(value).strip()
        return text if text else longreprtext.strip().splitlines()[-1]
    where = diagnose.raised_at(excinfo.tb)
    return f"{type(value).__name__}: {value}" + (f" (raised at {where})" if where else "")
