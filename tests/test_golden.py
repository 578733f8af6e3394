"""The report formats, held to golden files (tests/golden/): the conclab JSON report,
Gradescope's results.json, and Classroom 50's result.json and release body, each made from
one fixed grading of three topics (one passing, one failing with a skip, one that could not
be graded).  A change to a format shows as a diff of the golden file; to accept it on
purpose, run `CONCLAB_UPDATE_GOLDEN=1 pytest tests/test_golden.py` and commit the files."""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
from pathlib import Path

import pytest

from conclab import manifest
from conclab.grading import grade

GOLDEN = Path(__file__).with_name("golden")
ROOT = manifest.course_root()


def _tests(topic: manifest.Topic, outcomes: list[tuple[str, str, float, str]]) -> tuple[list, dict]:
    collected, results = [], {}
    for name, outcome, weight, message in outcomes:
        nodeid = f"graders/{topic.id}/test_{topic.module}.py::{name}"
        collected.append({"nodeid": nodeid, "name": name, "weight": weight})
        results[nodeid] = {"kind": "test", "nodeid": nodeid, "outcome": outcome, "duration": 0.25, "message": message}
    return collected, results


def fixed_report() -> grade.Report:
    threads, locks, processes = (manifest.find(key) for key in ("01", "02", "09"))
    passing = grade.score_topic(
        threads,
        *_tests(
            threads,
            [
                ("test_run_all_returns_results_in_input_order", "passed", 1.0, ""),
                ("test_run_all_runs_the_functions_at_the_same_time", "passed", 2.0, ""),
            ],
        ),
        0,
        0,
        "",
        3.5,
        140,
    )
    failing = grade.score_topic(
        locks,
        *_tests(
            locks,
            [
                (
                    "test_deposit_is_atomic",
                    "failed",
                    2.0,
                    "8 threads each deposited 1, 300 times: the balance should be 2400, but it is 659.",
                ),
                ("test_withdraw_refuses_an_overdraft", "passed", 1.0, ""),
                ("test_needs_two_cpus[3]", "skipped", 1.0, "only 1 usable CPU(s) here"),
            ],
        ),
        1,
        1,
        "",
        4.25,
        140,
    )
    broken = grade.score_topic(processes, [], {}, None, 1, "SyntaxError: invalid syntax", 1.5, 380)
    return grade.Report("/submissions/ada/exercises", [passing, failing, broken], duration=9.25)


def classroom50_module():
    path = ROOT / "graders" / "conclab" / "ship" / "templates" / "classroom50_autograder.py"
    spec = importlib.util.spec_from_file_location("classroom50_autograder", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Fixed(datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        return cls(2026, 11, 24, 5, 0, 0, tzinfo=tz)


def classroom50_outputs(monkeypatch) -> tuple[dict, str]:
    module = classroom50_module()
    monkeypatch.setattr(module.datetime, "datetime", _Fixed)
    for name in (
        "CLASSROOM",
        "ASSIGNMENT",
        "OWNER",
        "USERNAME",
        "ASSIGNMENT_TYPE",
        "SUBMISSION_TAG",
        "COMMIT_URL",
        "RELEASE_URL",
        "REVIEW_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLASSROOM", "cs-101")
    monkeypatch.setenv("OWNER", "ada")
    data = module.result(fixed_report().to_json())
    return data, module.release_body(data)


def compare(name: str, made: str) -> None:
    golden = GOLDEN / name
    if os.environ.get("CONCLAB_UPDATE_GOLDEN"):
        golden.write_text(made, encoding="utf-8")
    assert golden.is_file(), f"no golden file {golden}: run with CONCLAB_UPDATE_GOLDEN=1 to write it"
    expected = golden.read_text(encoding="utf-8")
    if name.endswith(".json"):
        assert json.loads(made) == json.loads(expected), f"{name} differs from its golden file"
    assert made == expected, f"{name} differs from its golden file"


def as_json(data: dict) -> str:
    return json.dumps(data, indent=2) + "\n"


def test_the_conclab_report_matches_its_golden_file():
    compare("report.json", as_json(fixed_report().to_json()))


def test_gradescope_results_match_their_golden_file():
    compare("gradescope-results.json", as_json(fixed_report().to_gradescope()))


def test_classroom50_result_and_release_body_match_their_golden_files(monkeypatch):
    data, body = classroom50_outputs(monkeypatch)
    compare("classroom50-result.json", as_json(data))
    compare("classroom50-release-body.md", body)


def test_a_changed_format_is_caught(monkeypatch, tmp_path):
    """The comparison itself: a report with one field renamed does not match."""
    data = fixed_report().to_json()
    data["topics"][0]["points"] = data["topics"][0].pop("score")
    with pytest.raises(AssertionError, match="differs from its golden file"):
        compare("report.json", as_json(data))
