"""What the course's Jupyter notebooks (`conclab export nbgrader`) call to run tests.

A topic's notebook writes the student's module to a file in its folder (`%%writefile
bank.py`), so that child processes started with spawn or forkserver can import it:
functions defined in a notebook live in `__main__`, which such a child cannot import.
The tests never run in the notebook's own kernel: they run in a pytest process of their
own, as `conclab grade` runs them (each test within the topic's time budget, with the
plugin's clean-up), on a copy of that file.  Student code that hangs, crashes or ends its
process costs tests, never the notebook.

- `check(topic)`: the topic's public tests (the notebook writes them next to the module).
- `graders(topic, source).check(test)`: one hidden grader's result; the source comes from
  the notebook's hidden test cell, so the graders never ship to students.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from conclab import manifest
from conclab.engine import report
from conclab.grading import grade, runner


class TestFailed(AssertionError):
    """A test failed; the message says what was expected and what happened."""


def _run(
    topic: manifest.Topic, test_file: str, test_source: str, folder: Path
) -> tuple[list[dict], dict[str, dict], int, str]:
    """Run the tests of `test_source` (as `test_file`) on the module in `folder`, in a pytest
    process of its own, as `conclab grade` runs a topic: each test within the topic's time
    budget, the whole run within grade.topic_timeout.  Returns (collected, results by
    nodeid, exit status, output)."""
    module = folder / topic.filename
    if not module.is_file():
        raise TestFailed(
            f"There is no {topic.filename} in {folder}: run the cell that starts with "
            f"%%writefile {topic.filename} first (it saves your code to that file)."
        )
    with tempfile.TemporaryDirectory(prefix="conclab-notebook-") as tmp:
        root = Path(tmp)
        code = root / "exercises" / topic.id
        tests = root / "graders" / topic.id
        code.mkdir(parents=True)
        tests.mkdir(parents=True)
        for path in folder.glob("*.py"):  # the module and any helper module the student wrote beside it
            if not path.name.startswith("test_"):
                shutil.copy(path, code / path.name)
        (tests / test_file).write_text(test_source, encoding="utf-8")
        report_path = root / "results.jsonl"
        command = [
            sys.executable,
            "-m",
            "pytest",
            f"graders/{topic.id}/{test_file}",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "conclab.engine.plugin",
            "--import-mode=importlib",
            f"--impl={root / 'exercises'}",
            f"--conclab-report={report_path}",
        ]
        env = runner.child_env(root)
        returncode, output = runner.run_in_own_group(command, root, env, grade.topic_timeout(topic))
        collected, results, _ = report.read(report_path)
    return collected, results, returncode, output


def _explain_missing(returncode: int, output: str) -> str:
    tail = "\n".join(line for line in output.strip().splitlines()[-8:])
    if returncode == -1:
        return f"The tests did not finish in time and were stopped before this one ended.\n{tail}"
    return (
        f"The test process ended before this test did (exit status {returncode}): something in the "
        f"code under test ended the process.\n{tail}"
    )


def check(topic_id: str, folder: str | os.PathLike = ".") -> None:
    """Run the topic's public tests on the module in `folder` and say how it went."""
    __tracebackhide__ = True  # a failure shows the message, not this function
    topic = manifest.find(topic_id)
    folder = Path(folder).resolve()
    test_file = f"test_{topic.module}.py"
    try:
        source = (folder / test_file).read_text(encoding="utf-8")
    except OSError:
        raise TestFailed(
            f"There is no {test_file} in {folder}: run the cell above that starts with %%writefile {test_file} first."
        ) from None
    started = time.monotonic()
    collected, results, returncode, output = _run(topic, test_file, source, folder)
    if not collected:
        raise TestFailed(_explain_missing(returncode, output))
    failed = []
    for test in collected:
        result = results.get(test["nodeid"])
        name = grade.readable(test["name"])
        if result is None:
            failed.append(f"{name}: did not finish")
        elif result["outcome"] == "failed":
            failed.append(f"{name}:\n    " + result["message"].replace("\n", "\n    "))
    passed = len(collected) - len(failed)
    print(f"{topic.id}: {passed} of {len(collected)} public tests passed in {time.monotonic() - started:.1f} s")
    if failed:
        hint = "" if passed else "\nStart with the first one; the lesson above has what you need."
        raise TestFailed("\n\n".join(failed) + hint)


class Graders:
    """A topic's hidden graders, as the notebook's hidden test cells carry them.  The first
    cell to ask runs them all in one pytest process (as `conclab grade` does); each cell then
    reports its own test.  They run again once the module files have changed."""

    def __init__(self, topic_id: str, source: str):
        self.topic = manifest.find(topic_id)
        self.source = source
        self._fingerprint: str | None = None
        self._run: tuple[list[dict], dict[str, dict], int, str] | None = None

    def _module_fingerprint(self, folder: Path) -> str:
        digest = hashlib.sha256(self.source.encode())
        for path in sorted(folder.glob("*.py")):
            if not path.name.startswith("test_"):
                digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        return digest.hexdigest()

    def check(self, name: str, folder: str | os.PathLike = ".") -> None:
        """The result of one grader (a test name, with its [parameters] if it has some)."""
        __tracebackhide__ = True
        folder = Path(folder).resolve()
        fingerprint = self._module_fingerprint(folder)
        if self._run is None or fingerprint != self._fingerprint:
            self._run = _run(self.topic, f"test_{self.topic.module}.py", self.source, folder)
            self._fingerprint = fingerprint
        collected, results, returncode, output = self._run
        nodeid = next((t["nodeid"] for t in collected if t["name"] == name), None)
        result = results.get(nodeid) if nodeid else None
        if result is None:
            raise TestFailed(_explain_missing(returncode, output))
        if result["outcome"] == "failed":
            raise TestFailed(result["message"])
        if result["outcome"] == "skipped":
            print(f"skipped: {result['message']}")
        else:
            print(f"passed in {result['duration']:.1f} s")


def graders(topic_id: str, source: str) -> Graders:
    return Graders(topic_id, source)
