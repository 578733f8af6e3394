"""Each test's result as a student reads it, and as the results file keeps it: a failure
explained in plain words (a stub's TODO, exceptions in threads, the seed of the forced
switches), set-up, call and tear-down folded into one result, weights from the markers."""

from __future__ import annotations

import traceback
from pathlib import Path

import pytest

from conclab.core import diagnose
from conclab.kit import parallel, state

from . import calls, integrity, report, session


def _not_written_yet(exc: BaseException) -> str:
    frame = diagnose.student_frame(exc.__traceback__)
    where = f" ({Path(frame.filename).name} line {frame.lineno})" if frame else ""
    name = str(exc) or "this part"
    return f"{name} is not written yet: it raises NotImplementedError{where}.\nReplace the TODO there with your code."


#: How a test that could not be measured begins its message (dev check and the reports know it by this).
NOT_MEASURED = "Could not be measured:"


def not_measured(call: pytest.CallInfo) -> bool:
    """Whether the test ended in a grader's NotMeasured (a busy machine), raised by the
    graders' measuring itself: one that came through the student's code is a plain failure."""
    if call.excinfo is None or not call.excinfo.errisinstance(parallel.NotMeasured):
        return False
    frames = traceback.extract_tb(call.excinfo.tb)
    inner = Path(frames[-1].filename).resolve() if frames else None
    return diagnose.student_frame(call.excinfo.tb) is None and inner == Path(parallel.__file__).resolve()


def explain_failure(item: pytest.Item, call: pytest.CallInfo, test_report: pytest.TestReport) -> None:
    if not_measured(call):
        topic = session.topic_of(item)
        rerun = f"conclab grade --topic {topic.id}" if topic else "conclab grade"
        test_report.longrepr = (
            f"{NOT_MEASURED} {call.excinfo.value}\nIt scores nothing yet and is not a fail: grade it again when the "
            f"machine is quieter ({rerun})."
        )
        test_report.user_properties.append(("conclab_outcome", "error"))
        return
    if call.excinfo is not None and call.excinfo.errisinstance(NotImplementedError):
        test_report.longrepr = _not_written_yet(call.excinfo.value)
        return
    if state.not_implemented:
        test_report.longrepr = _not_written_yet(state.not_implemented[0])
        return
    errors = item.stash.get(calls.thread_errors_key, [])
    if errors and not (call.excinfo and "nobody caught it" in str(call.excinfo.value)):
        test_report.sections.append(("exceptions in threads", calls.format_thread_errors(errors)))
    switches = item.stash.get(calls.chaos_key, None)
    run = session.run
    if switches is not None and switches.switches and run is not None:
        test_report.sections.append(
            (
                "forced thread switches",
                f"{switches.switches} forced thread switches, seed {run.seed}: replay with --chaos-seed {run.seed}",
            )
        )


def student_message(call: pytest.CallInfo, test_report: pytest.TestReport) -> str:
    longrepr = test_report.longrepr
    if isinstance(longrepr, str):
        return longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (path, line, "Skipped: reason")
        return str(longrepr[2]).removeprefix("Skipped: ")
    return report.message_of(call.excinfo, test_report.longreprtext)


def record(test_report: pytest.TestReport) -> None:
    """Fold each test's set-up, call and tear-down into one result for --conclab-report."""
    run = session.run
    if run is None or run.writer is None:
        return
    entry = run.pending.setdefault(test_report.nodeid, {"outcome": "passed", "duration": 0.0, "message": ""})
    entry["duration"] += test_report.duration
    properties = dict(test_report.user_properties)
    message = properties.get("conclab_message", "")
    if test_report.failed and entry["outcome"] != "failed":
        # "error": could not be measured; a failure in another phase still makes it a fail
        outcome = properties.get("conclab_outcome", "failed")
        if outcome == "failed" or entry["outcome"] != "error":
            entry.update(outcome=outcome, message=message)
    elif test_report.skipped and entry["outcome"] == "passed":
        entry.update(outcome="skipped", message=message)
    if test_report.when == "teardown":
        if run.cheat and not run.integrity_sent:
            run.writer.integrity(run.cheat)  # every test fails, those graded already included
            run.integrity_sent = True
        run.writer.test(test_report.nodeid, **run.pending.pop(test_report.nodeid))


def collected(items: list[pytest.Item]) -> None:
    """Once the tests are collected: the snapshot of the graders' tools (before any student
    module is imported), and the tests with their weights in the results file."""
    run = session.run
    if run is None:
        return
    run.tools = integrity.Tools(run.config.pluginmanager)
    if run.writer is not None:
        run.writer.collected([{"nodeid": item.nodeid, "name": item.name, "weight": weight(item)} for item in items])


def weight(item: pytest.Item) -> float:
    marker = item.get_closest_marker("weight")
    return float(marker.args[0]) if marker and marker.args else 1.0
