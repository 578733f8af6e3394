"""`conclab grade`: every topic's graders in a pytest run of its own, scored from the
manifest's points, reported as a table, as JSON and as Gradescope's results.json.

A topic is graded in a child process (its own process group, killed when it ends or
runs out of time), which writes each test's result as it goes (see report.py).  A topic
whose run dies, ends early (whatever its exit status) or writes no result scores zero,
with the reason; the other topics are graded all the same.  Topics run side by side,
as many as there are usable CPUs: the timing tests still have the machine to themselves,
because every test takes the machine lock (machine.py) and they take it alone.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from conclab import manifest
from conclab.core import files, guard
from conclab.core.cpus import usable_cpus
from conclab.engine import integrity, report

from . import runner, seal

VERSION = 1
CHANNEL = os.name == "posix"  # results over an inherited pipe (else a file in a private folder)


def topic_timeout(topic: manifest.Topic) -> float:
    """How long one topic's run may take in all before it is stopped: far more than any
    real solution or stub needs, and a bound on a submission where every test hangs."""
    return topic.budget * 8 + 60


@dataclass
class TestResult:
    name: str
    status: str  # pass, fail, skip or error (could not be measured: worth nothing yet, graded again later)
    score: float
    max_score: float
    message: str
    duration: float


@dataclass
class TopicResult:
    id: str
    title: str
    status: str  # pass, fail or error
    score: float
    max_score: float
    message: str = ""  # why the topic could not be graded, or not all of it (status error)
    duration: float = 0.0
    integrity: str = ""  # for the instructor: what the code under test did that grading refuses
    tests: list[TestResult] = field(default_factory=list)


def readable(test_name: str) -> str:
    """test_a_slow_client_does_not_block[3] -> 'a slow client does not block [3]'."""
    base, _, params = test_name.partition("[")
    text = base.removeprefix("test_").replace("_", " ")
    return f"{text} [{params}" if params else text


def _tail(output: str, lines: int = 15) -> str:
    """What a student may read of a run's own output: the engine's notes ("conclab: ..."), never
    pytest's tracebacks, which quote the graders' source (the whole output stays in the log)."""
    kept = [line for line in output.rstrip().splitlines() if line.startswith("conclab: ")][-lines:]
    return "\n".join(line[:500] for line in kept)


def score_topic(
    topic: manifest.Topic,
    collected: list[dict],
    results: dict[str, dict],
    exitstatus: int | None,
    returncode: int,
    output: str,
    duration: float,
    timeout: float,
    integrity: str = "",
) -> TopicResult:
    """A topic's result from what its run wrote, or zero with the reason it could not be graded.
    A test without a result failed; with `integrity` (the run found its tools replaced), every
    test failed, with that message."""
    result = TopicResult(
        topic.id, topic.title, "error", 0.0, float(topic.points), duration=round(duration, 2), integrity=integrity
    )
    if returncode == -1:
        result.message = f"Grading did not finish within {timeout:g} s and was stopped."
    elif not collected:
        result.message = (f"Grading ended before any test ran (exit status {returncode}).\n{_tail(output)}").strip()
    elif exitstatus is None:
        missing = [t["name"] for t in collected if t["nodeid"] not in results]
        at = f", at the test {readable(missing[0])!r}" if missing else ""
        result.message = (
            f"Grading ended early (exit status {returncode}{at}), so this topic could not be graded: "
            f"something in the code under test ended the process.\n{_tail(output, 8)}"
        ).strip()
    elif exitstatus not in (0, 1):
        result.message = f"Grading could not run (pytest exit status {exitstatus}).\n{_tail(output)}".strip()
    if result.message:
        return result
    no_result = {"outcome": "failed", "duration": 0.0, "message": "This test did not finish: the run ended during it."}
    results = {t["nodeid"]: results.get(t["nodeid"], no_result) for t in collected}
    if integrity:
        results = {
            nodeid: {**outcome, "outcome": "failed", "message": integrity} for nodeid, outcome in results.items()
        }
    weights = {t["nodeid"]: float(t.get("weight", 1.0)) for t in collected}
    judged = sum(w for nodeid, w in weights.items() if results[nodeid]["outcome"] != "skipped")
    for test in collected:
        outcome = results[test["nodeid"]]
        status = {"passed": "pass", "skipped": "skip", "error": "error"}.get(outcome["outcome"], "fail")
        maximum = 0.0 if status == "skip" or not judged else topic.points * weights[test["nodeid"]] / judged
        result.tests.append(
            TestResult(
                readable(test["name"]),
                status,
                maximum if status == "pass" else 0.0,
                maximum,
                outcome.get("message", ""),
                outcome.get("duration", 0.0),
            )
        )
    result.score = round(sum(t.score for t in result.tests), 6) if judged else float(topic.points)
    unmeasured = [t.name for t in result.tests if t.status == "error"]
    if any(t.status == "fail" for t in result.tests):
        result.status = "fail"
    elif unmeasured:
        result.status = "error"
        result.message = (
            f"{len(unmeasured)} test(s) could not be measured, because other programs kept the CPUs busy "
            f"({', '.join(repr(n) for n in unmeasured[:3])}): they score nothing yet, and are not fails. "
            f"Grade this topic again when the machine is quieter: conclab grade --topic {topic.id}"
        )
    else:
        result.status = "pass"
    return result


def unmeasured(result: TopicResult) -> bool:
    """Whether the topic failed nothing but has tests that could not be measured."""
    return result.status == "error" and any(t.status == "error" for t in result.tests)


def grade_topic(
    topic: manifest.Topic,
    impl: Path,
    root: Path,
    start_method: str | None = None,
    running: set | None = None,
    tests: str = "graders",
    snapshot: seal.Snapshot | None = None,
) -> TopicResult:
    """Run a topic's graders (or, with tests="exercises", its public tests) on `impl`.

    Graders run in a folder of their own: a fresh copy of the course's graders (from
    `snapshot`, read from `root` when grading began) and, of the submission, the topic's
    module file alone.  Public tests (a student's `conclab check`) run in the course itself."""
    timeout = topic_timeout(topic)
    if tests == "graders" and not (root / "graders" / topic.id).is_dir():
        return _not_graded(
            topic,
            f"There are no graders for {topic.id} in {root / 'graders'}: this copy of the "
            "course has the public tests only (pytest exercises/...); the graders come with "
            "the instructor's grading.",
        )
    with tempfile.TemporaryDirectory(prefix="conclab-grade-") as tmp:
        folder = Path(tmp)  # only this user may enter it (mode 0700)
        course, graded = root, impl
        env = runner.child_env(root)
        if tests == "graders":
            snapshot = snapshot or seal.Snapshot.of(root)
            graded = folder / "submission"
            graded.mkdir(mode=0o700)
            refused = seal.take(impl, topic, graded)
            if refused:
                missing = (
                    not (impl / topic.id / topic.filename).exists()
                    and not (impl / topic.id / topic.filename).is_symlink()
                )
                return _not_graded(topic, refused, integrity="" if missing else refused)
            course = snapshot.write(folder / "course")
            scratch = folder / "tmp"
            scratch.mkdir(mode=0o700)
            env = runner.child_env(course)
            env["TMPDIR"] = str(scratch)
            env["PYTHONPATH"] = os.pathsep.join([str(course / "graders"), *_inherited_path(env)])
            refusals_log = folder / "refusals.log"
        # No conftest.py takes part: the graders need none, and one in the submission (or
        # beside it in a student's repository) could make failing tests pass.
        command = [
            sys.executable,
            "-m",
            "pytest",
            f"{tests}/{topic.id}",
            "-q",
            "-p",
            "no:cacheprovider",
            "--noconftest",
            f"--impl={graded}",
        ]
        if tests == "graders":
            command += [f"--conclab-guard={topic.id}", f"--conclab-guard-log={refusals_log}"]
        if start_method:
            command.append(f"--start-method={start_method}")
        started = time.monotonic()
        channel = report.Channel() if CHANNEL else None
        try:
            if channel is not None:
                command.append(channel.argument)
                returncode, output = runner.run_in_own_group(
                    command, course, env, timeout, running, pass_fds=channel.fds, on_start=channel.handed_over
                )
                results = channel.close()
            else:  # no inherited pipes (Windows): a results file in the private folder
                command.append(f"--conclab-report={folder / 'results.jsonl'}")
                returncode, output = runner.run_in_own_group(command, course, env, timeout, running)
                results = report.parse(_lines(folder / "results.jsonl"))
            duration = time.monotonic() - started
            tampered = snapshot.changed(course) if snapshot is not None and course != root else []
            refusals = guard.read_log(refusals_log) if tests == "graders" else []
        finally:
            if channel is not None:
                channel.close(grace=0)
            if course != root:
                seal.remove(course)
    if results.tampered:
        return _not_graded(
            topic,
            "The code under test interfered with the grading run's results, so this topic could not be "
            "graded. Change nothing outside your own module.",
            integrity=f"the results held {results.tampered}",
            duration=duration,
        )
    if tampered:
        shown = ", ".join(tampered[:3]) + (", ..." if len(tampered) > 3 else "")
        return _not_graded(
            topic,
            "The code under test changed the grading files, so this topic could not be graded. "
            "Change nothing outside your own module.",
            integrity=f"changed the graders' files: {shown}",
            duration=duration,
        )
    return score_topic(
        topic,
        results.collected,
        results.tests,
        results.exitstatus,
        returncode,
        output,
        duration,
        timeout,
        integrity=results.integrity or (integrity.refused(refusals) if refusals else ""),
    )


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []


def _inherited_path(env: dict[str, str]) -> list[str]:
    return [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]


def _not_graded(topic: manifest.Topic, message: str, integrity: str = "", duration: float = 0.0) -> TopicResult:
    return TopicResult(
        topic.id,
        topic.title,
        "error",
        0.0,
        float(topic.points),
        message=message,
        duration=round(duration, 2),
        integrity=integrity,
    )


@dataclass
class Report:
    impl: str
    topics: list[TopicResult]
    duration: float = 0.0

    @property
    def score(self) -> float:
        return round(sum(t.score for t in self.topics), 2)

    @property
    def max_score(self) -> float:
        return sum(t.max_score for t in self.topics)

    @property
    def status(self) -> str:
        if any(t.status == "error" for t in self.topics):
            return "error"
        return "pass" if all(t.status == "pass" for t in self.topics) else "fail"

    def to_json(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "status": self.status,
            "score": self.score,
            "max_score": self.max_score,
            "impl": self.impl,
            "duration": round(self.duration, 2),
            "topics": [asdict(t) for t in self.topics],
        }

    def to_gradescope(self) -> dict[str, Any]:
        """Gradescope's results.json: one entry per grader (one per topic that could not be graded)."""
        tests = []
        for topic in self.topics:
            if topic.status == "error" and not topic.tests:
                tests.append(
                    {
                        "name": f"{topic.id}: {topic.title}",
                        "score": 0.0,
                        "max_score": topic.max_score,
                        "status": "failed",
                        "output": topic.message,
                        "visibility": "visible",
                    }
                )
                continue
            for test in topic.tests:
                if test.status == "skip":
                    continue
                tests.append(
                    {
                        "name": f"{topic.id}: {test.name}",
                        "score": test.score,
                        "max_score": test.max_score,
                        "status": "passed" if test.status == "pass" else "failed",
                        "output": test.message,
                        "visibility": "visible",
                    }
                )
        lines = [
            f"{t.id}: {t.score:g} / {t.max_score:g}" + (f" ({t.message.splitlines()[0]})" if t.message else "")
            for t in self.topics
        ]
        return {
            "score": self.score,
            "execution_time": round(self.duration),
            "output": "\n".join(lines),
            "stdout_visibility": "hidden",
            "tests": tests,
        }


def grade(
    topics: list[manifest.Topic],
    impl: Path,
    root: Path | None = None,
    jobs: int | None = None,
    start_method: str | None = None,
    on_topic: Callable[[TopicResult], None] | None = None,
    digest: str | None = None,
) -> Report:
    """Grade the topics of the implementation in `impl`, `jobs` topics at a time."""
    root = root or manifest.course_root()
    # One more run than CPUs: much of grading is waiting (sleeps, time-outs, the machine lock
    # of the speed-up graders), and the speed-up graders have the machine to themselves anyway.
    jobs = max(1, jobs or min(usable_cpus() + 1, len(topics)))
    started = time.monotonic()
    results: dict[str, TopicResult] = {}
    snapshot = seal.Snapshot.of(root)  # every topic is graded with the course as it is now
    snapshot.expect(digest, root)
    with runner.child_runs(jobs, "grade") as (pool, running):
        # The longest first (the budget says roughly how long), so that no long topic is left to
        # run alone at the end; the results are still reported in topic order.
        longest_first = sorted(topics, key=lambda t: (-t.budget, -int(t.processes)))
        submitted = {
            topic.id: pool.submit(grade_topic, topic, impl, root, start_method, running, snapshot=snapshot)
            for topic in longest_first
        }
        for topic in topics:  # each is reported once it and those before it are done
            results[topic.id] = submitted[topic.id].result()
            if on_topic is not None:
                on_topic(results[topic.id])
    return Report(str(impl), [results[t.id] for t in topics], time.monotonic() - started)


def write_json(path: str, data: dict[str, Any]) -> None:
    text = json.dumps(data, indent=2) + "\n"
    if path == "-":
        sys.stdout.write(text)
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    files.replace(target, text)
