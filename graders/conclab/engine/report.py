"""The results a grading run sends to `conclab grade`, one record at a time, so that whatever
happens later (a crash, an os._exit in student code, a run stopped from outside) the tests
graded so far keep their result:

    {"kind": "collected", "tests": [{"nodeid", "name", "weight"}, ...]}
    {"kind": "test", "nodeid", "outcome": "passed" | "failed" | "skipped" | "error", "duration", "message"}
                                        error: could not be measured (a busy machine), to grade again
    {"kind": "integrity", "message"}    the code under test replaced a grader's tool: every test fails
    {"kind": "complete", "exitstatus": 0}

Each line is `MAC JSON`, the JSON holding a sequence number `seq` counting from 0.  In a run
started by `conclab grade` the records travel over a pipe the run inherits (--conclab-channel
names only a second pipe, from which the run reads, before any student code is imported, the
number of the first and a key, and which it then closes), and MAC is the HMAC-SHA256 of the
JSON with that key: the code under test can name neither, and a record it forges, repeats or
reorders makes the run's results worthless (`Results.tampered`), never better.  Elsewhere
(--conclab-report FILE: notebooks, a run by hand) MAC is "-".

A run whose records have no "complete" ended early; nothing after "complete" counts.
Messages are the ones a student reads: a grader's own failure text, or the student's
exception and where it was raised.
"""

from __future__ import annotations

import hmac
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conclab.core import diagnose, pipes

MAX_MESSAGE = 4000
MAX_CHANNEL_BYTES = 32 * 1024 * 1024  # far more than any run writes; beyond it, nothing is read


# Bound when the engine is imported, before any student code runs: a module of the student's
# that replaces json.dumps or hmac.new changes nothing written here (integrity.py then fails
# every test for the replacement).
try:
    from _hashlib import hmac_digest as _hmac_digest
except ImportError:  # pragma: no cover - Python built without OpenSSL
    _hmac_digest = hmac.digest


def _mac(key: bytes | None, text: str) -> str:
    return _hmac_digest(key, text.encode("utf-8"), "sha256").hex() if key else "-"


_ESCAPES = {i: f"\\u{i:04x}" for i in range(32)} | {ord('"'): '\\"', ord("\\"): "\\\\"}


def _encode(value: Any) -> str:
    """JSON text of a record (dicts, lists, strings, numbers, booleans, None), written with the
    built-in types alone."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if type(value) is int:
        return int.__repr__(value)
    if type(value) is float:
        return float.__repr__(value) if value == value and value not in (float("inf"), float("-inf")) else "null"
    if type(value) is str:
        value = str.encode(value, "utf-8", "replace").decode("utf-8")  # no lone surrogates
        return '"' + str.translate(value, _ESCAPES) + '"'
    if type(value) in (list, tuple):
        return "[" + ", ".join(_encode(v) for v in value) + "]"
    if type(value) is dict:
        return "{" + ", ".join(_encode(str(k)) + ": " + _encode(v) for k, v in dict.items(value)) + "}"
    return _encode(str(value))


class Writer:
    """Writes a run's records to a file (a path) or to an inherited pipe (a file descriptor)."""

    def __init__(self, target: str | os.PathLike | int, key: bytes | None = None):
        if isinstance(target, int):
            self._file = os.fdopen(target, "w", encoding="utf-8")  # noqa: SIM115 - open for the whole run
        else:
            self._file = open(Path(target), "w", encoding="utf-8")  # noqa: SIM115
        self._key = key
        self._seq = 0
        self._lock = threading.Lock()  # the budget's backstop writes from a timer thread

    def _line(self, record: dict[str, Any]) -> None:
        with self._lock:
            if self._file.closed:
                return
            text = _encode({**record, "seq": self._seq})
            self._seq += 1
            try:
                self._file.write(f"{_mac(self._key, text)} {text}\n")
                self._file.flush()
            except (OSError, ValueError):
                pass  # the reader is gone: the run's results no longer matter to anyone

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

    def integrity(self, message: str) -> None:
        """The code under test replaced a tool the graders measure with: every test fails."""
        self._line({"kind": "integrity", "message": message[:MAX_MESSAGE]})

    def complete(self, exitstatus: int) -> None:
        self._line({"kind": "complete", "exitstatus": exitstatus})
        with self._lock:
            try:
                self._file.close()
            except OSError:
                pass


def open_channel(fd: int) -> Writer:
    """The writer of a run started with --conclab-channel=FD: read the results pipe's number and
    the key from FD (written by the parent before the run started), close it, and write there."""
    data = b""
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    os.close(fd)
    told = json.loads(data)
    return Writer(int(told["fd"]), bytes.fromhex(told["key"]))


@dataclass
class Results:
    """What a run's records say, read as the parent reads them."""

    collected: list[dict[str, Any]] = field(default_factory=list)
    tests: dict[str, dict[str, Any]] = field(default_factory=dict)  # nodeid -> its record
    exitstatus: int | None = None  # None: the run did not complete
    integrity: str = ""  # the run's own finding: the code under test replaced a grader's tool
    tampered: str = ""  # why the records cannot be trusted ("" when they can)
    _seq: int = 0
    _key: bytes | None = None

    def add(self, line: str) -> None:
        if self.exitstatus is not None or self.tampered or not line.strip():
            return  # nothing after the end counts, and nothing after a forgery
        mac, _, text = line.partition(" ")
        if not hmac.compare_digest(mac, _mac(self._key, text)):
            self.tampered = "a record that grading did not write"
            return
        try:
            record = json.loads(text)
        except ValueError:
            self.tampered = "a record that cannot be read"
            return
        if not isinstance(record, dict) or record.get("seq") != self._seq:
            self.tampered = "a record out of its place"
            return
        self._seq += 1
        kind = record.get("kind")
        if kind == "collected" and not self.collected and isinstance(record.get("tests"), list):
            self.collected = record["tests"]
        elif kind == "test" and record.get("nodeid") in {t.get("nodeid") for t in self.collected}:
            if record["nodeid"] in self.tests:
                self.tampered = f"a second result for {record['nodeid']}"
                return
            self.tests[record["nodeid"]] = record
        elif kind == "integrity":
            self.integrity = self.integrity or str(record.get("message", ""))
        elif kind == "complete":
            self.exitstatus = record.get("exitstatus")
        else:
            self.tampered = f"a record of an unknown kind or test ({str(kind)[:40]})"


def parse(lines: list[str], key: bytes | None = None) -> Results:
    results = Results(_key=key)
    for line in lines:
        results.add(line)
    return results


def read(path: str | os.PathLike) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], int | None]:
    """(collected tests, results by nodeid, exit status or None if the run did not complete)
    of a results file (--conclab-report FILE)."""
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return [], {}, None
    results = parse(lines)
    return results.collected, results.tests, results.exitstatus


class Channel:
    """The parent's end of a run's results: a pipe the run inherits (`fds` to pass it, `argument`
    to give it), read by a thread of ours as the run goes, at most MAX_CHANNEL_BYTES."""

    def __init__(self) -> None:
        self.key = os.urandom(32)
        self.results = Results(_key=self.key)
        self._pending = b""
        self._inbox = pipes.Inbox(MAX_CHANNEL_BYTES, take=self._take, name="conclab-results")
        told_read, told_write = os.pipe()
        os.write(told_write, json.dumps({"fd": self._inbox.fd, "key": self.key.hex()}).encode())
        os.close(told_write)
        self._told = told_read
        self.fds = (told_read, self._inbox.fd)  # the run's, closed here once it has started (handed_over)
        self.argument = f"--conclab-channel={told_read}"

    def handed_over(self) -> None:
        """The run has started with its ends of the pipes: ours are closed, so the pipe ends
        when the run (and whatever it started that kept them) has ended."""
        if self.fds:
            os.close(self._told)
            self._inbox.handed_over()
            self.fds = ()

    def _take(self, chunk: bytes) -> None:
        *lines, self._pending = (self._pending + chunk).split(b"\n")
        for line in lines:
            self.results.add(line.decode("utf-8", errors="replace"))

    def close(self, grace: float = 1.0) -> Results:
        """Once the run has ended: what it sent (waiting up to `grace` seconds for the last of it,
        not for a process it left behind that still holds the pipe)."""
        self.handed_over()
        self._inbox.close(grace, done=lambda: self.results.exitstatus is not None)
        if self._inbox.overflowed:
            self.results.tampered = self.results.tampered or "more records than any run writes"
        return self.results


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
        if diagnose.raised_by_student(excinfo.tb):
            return diagnose.exception_text(value)
        return text if text else "A check of the graders failed (it has no message: tell your instructor)."
    where = diagnose.raised_at(excinfo.tb)
    return diagnose.exception_text(value) + (f" (raised at {where})" if where else "")
