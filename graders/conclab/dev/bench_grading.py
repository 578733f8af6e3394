"""`conclab dev bench-grading`: how long grading takes on this machine.  A measurement,
not a test: it prints what it finds.

1. `conclab grade` on the reference solutions and on the untouched stubs: wall time,
   points, and whether any process was left running.
2. `conclab grade-all` over COPIES submissions of mixed kinds (solved, stubs, half solved,
   one that deadlocks, one that calls os._exit(0) at import): the wall time with one
   submission per usable CPU at a time, against one submission after another, and whether
   the CSV gives each kind the points it deserves.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from conclab import commandline, manifest
from conclab.core.cpus import usable_cpus

DEADLOCK = '''"""Deadlocks on purpose: every call waits for a lock nobody releases."""
import threading

_lock = threading.Lock()
_lock.acquire()


def __getattr__(name):
    def stuck(*args, **kwargs):
        _lock.acquire()
    return stuck
'''


def _conclab(*args: str, root: Path) -> tuple[float, subprocess.CompletedProcess]:
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "conclab", *args], cwd=root, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    return time.monotonic() - started, run


def _left_running(marker: str) -> list[str]:
    left = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if marker in cmdline:
            left.append(f"{proc.pid} {cmdline[:100]}")
    return left


def bench_grade(root: Path, topics: list[str]) -> None:
    selection = [arg for t in topics for arg in ("--topic", t)]
    for label, impl in (("solutions", root / "solutions"), ("stubs", root / "exercises")):
        with tempfile.TemporaryDirectory(prefix="conclab-bench-") as tmp:
            report_path = Path(tmp) / "report.json"
            seconds, run = _conclab("grade", "--impl", str(impl), "--json", str(report_path), *selection, root=root)
            try:
                data = json.loads(report_path.read_text())
                score = f"{data['score']:g} / {data['max_score']:g}"
            except (OSError, ValueError):
                score = "no report"
            left = _left_running(str(impl))
            print(
                f"conclab grade on the {label:<9} {seconds:6.1f} s  points {score:<12} exit status "
                f"{run.returncode}; processes left running: {len(left)}",
                flush=True,
            )
            for line in left:
                print(f"    {line}")


KINDS = ("solved", "stubs", "half", "deadlock", "exit_at_import")


def make_submissions(root: Path, folder: Path, copies: int, topics: list[manifest.Topic]) -> dict[str, str]:
    """COPIES student checkouts, kinds in turn; returns student -> kind."""
    kinds = {}
    for i in range(copies):
        kind = KINDS[i % len(KINDS)] if i < len(KINDS) else ("solved", "stubs", "half")[i % 3]
        student = f"student{i:02d}-{kind}"
        target = folder / student / "exercises"
        for n, topic in enumerate(topics):
            solved = kind == "solved" or (kind == "half" and n % 2 == 0) or kind in ("deadlock", "exit_at_import")
            source = root / ("solutions" if solved else "exercises") / topic.id
            shutil.copytree(source, target / topic.id, ignore=shutil.ignore_patterns("__pycache__"))
        if kind == "deadlock":
            (target / topics[0].id / topics[0].filename).write_text(DEADLOCK)
        if kind == "exit_at_import":
            (target / topics[0].id / topics[0].filename).write_text("import os\nos._exit(0)\n")
        kinds[student] = kind
    return kinds


def expected_points(kind: str, topics: list[manifest.Topic]) -> list[float]:
    points = []
    for n, topic in enumerate(topics):
        solved = (
            kind == "solved" or (kind == "half" and n % 2 == 0) or (kind in ("deadlock", "exit_at_import") and n > 0)
        )
        points.append(float(topic.points) if solved else 0.0)
    return points


def bench_grade_all(root: Path, copies: int, topics: list[manifest.Topic], jobs: int) -> None:
    selection = [arg for t in topics for arg in ("--topic", t.id)]
    with tempfile.TemporaryDirectory(prefix="conclab-bench-class-") as tmp:
        folder = Path(tmp) / "submissions"
        kinds = make_submissions(root, folder, copies, topics)
        times = {}
        for label, n in ((f"{jobs} at a time", jobs), ("one after another", 1)):
            out = Path(tmp) / f"grades-{n}.csv"
            seconds, run = _conclab(
                "grade-all", str(folder), "--out", str(out), "--jobs", str(n), *selection, root=root
            )
            times[label] = seconds
            rows = list(csv.DictReader(out.open())) if out.exists() else []
            wrong = []
            for row in rows:
                got = [float(row[t.id] or 0) for t in topics]
                if got != expected_points(kinds[row["student"]], topics):
                    wrong.append(f"{row['student']}: {got} ({row['notes']})")
            left = _left_running(str(folder))
            print(
                f"conclab grade-all, {copies} submissions, {label:<17} {seconds:7.1f} s  rows {len(rows)}, "
                f"wrong rows {len(wrong)}, processes left running {len(left)}",
                flush=True,
            )
            for line in wrong[:5]:
                print(f"    wrong: {line}")
        parallel_time, serial_time = times.values()
        print(f"grade-all speed-up: {serial_time / parallel_time:.2f}x with {jobs} at a time")


def register(commands) -> None:
    parser = commandline.command(
        commands, "bench-grading", run, "how long conclab grade and grade-all take here", __doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--copies",
        type=commandline.at_least_one,
        default=30,
        metavar="N",
        help="submissions for grade-all (default 30)",
    )
    commandline.add_topics(parser)
    parser.add_argument("--only", choices=("grade", "grade-all"), help="run one of the two measurements")


def run(options) -> int:
    topics = commandline.topics(options.topic)
    root = manifest.course_root()
    print(f"{usable_cpus()} usable CPU(s); {len(topics)} topic(s)", flush=True)
    if options.only != "grade-all":
        bench_grade(root, [t.id for t in topics])
    if options.only != "grade":
        bench_grade_all(root, options.copies, topics, usable_cpus())
    return 0
