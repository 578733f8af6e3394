"""Each test's result as a student reads it, and as the results file keeps it: a failure
explained in plain words (a stub's TODO, exceptions in threads, the seed of the forced
switches), set-up, call and tear-down folded into one result, weights from the markers."""

from __future__ import annotations

from pathlib import Path

import pytest

from conclab.core import diagnose
from conclab.kit import state

from . import calls, integrity, report, session


def _not_written_yet(exc: BaseException) -> str:
    frame = diagnose.student_frame(exc.__traceback__)
    where = f" ({Path(frame.filename).name} line {frame.lineno})" if frame else ""
    name = str(exc) or "this part"
    return f"{name} is not written yet: it raises NotImplementedError{where}.\nReplace the TODO there with your code."


def explain_failure(item: pytest.Item, call: pytest.CallInfo, test_report: pytest.TestReport) -> None:
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
    message = dict(test_report.user_properties).get("conclab_message", "")
    if test_report.failed and entry["outcome"] != "failed":
        entry.update(outcome="failed", message=message)
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
