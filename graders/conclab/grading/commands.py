"""`conclab grade` and `conclab grade-all`: the grading commands, their options and what they print."""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
import time
from pathlib import Path

from conclab import commandline, manifest
from conclab.commandline import UsageError
from conclab.core import cleanup

from . import grade as grading
from . import gradeall, runner, seal

STATUS_STYLE = {"pass": "green", "fail": "red", "error": "bold red"}


def register(commands) -> None:
    parser = commandline.command(
        commands,
        "grade",
        run_grade,
        "grade the exercises (or --impl DIR) topic by topic",
        "Run the hidden graders of each topic in a pytest run of its own and print the points.\n"
        "Exit status: 0 when everything graded passed, 1 when something failed, 2 when grading could not run.",
    )
    parser.add_argument("--impl", metavar="DIR", help="folder of topic folders to grade (default: exercises/)")
    commandline.add_topics(parser)
    parser.add_argument("--json", metavar="FILE", help="write the report to FILE ('-' for standard output)")
    parser.add_argument(
        "--format",
        choices=("conclab", "gradescope"),
        default="conclab",
        help="the report's format: conclab's own JSON, or Gradescope's results.json "
        "(written to results.json unless --json says where)",
    )
    parser.add_argument(
        "--jobs",
        type=commandline.at_least_one,
        metavar="N",
        help="grade N topics at a time (default: one more than the usable CPUs)",
    )
    commandline.add_start_method(parser)
    # grade-all's: the report goes to the parent over this inherited pipe, never to a file
    parser.add_argument("--report-fd", type=int, help=argparse.SUPPRESS)

    parser = commandline.command(
        commands,
        "grade-all",
        run_grade_all,
        "grade every submission in a folder (one sub-folder per student) into a CSV, several at a time",
        "Grade every submission folder of SUBMISSIONS_DIR (a student's checkout, or its topic folders) in a "
        "process of its own,\nseveral at a time, into a CSV with a row per student and a column per topic.",
    )
    parser.add_argument(
        "submissions",
        metavar="SUBMISSIONS_DIR",
        help="a folder with one sub-folder per student (names starting with . or _ are left out)",
    )
    parser.add_argument("--out", metavar="CSV", required=True, help="the grades: a row per student, a column per topic")
    commandline.add_topics(parser)
    parser.add_argument(
        "--jobs",
        type=commandline.at_least_one,
        metavar="N",
        help="grade N submissions at a time (default: the usable CPUs)",
    )
    parser.add_argument(
        "--timeout",
        type=commandline.more_than_zero,
        metavar="S",
        help="seconds one submission may take in all (default: every topic's time limit added up)",
    )
    parser.add_argument("--reports", metavar="DIR", help="keep each submission's JSON report and output here")


def _impl_folder(value: str | None, root: Path) -> Path:
    impl = Path(value).resolve() if value else root / "exercises"
    if not impl.is_dir():
        raise UsageError(f"--impl {value}: no such folder")
    return impl


def _output_file(value: str | None) -> None:
    if value and value != "-":
        parent = Path(value).resolve().parent
        if not parent.is_dir():
            raise UsageError(f"--json {value}: the folder {parent} does not exist")


def run_grade(options: argparse.Namespace) -> int:
    if options.format == "gradescope" and not options.json:
        options.json = "results.json"
    topics = commandline.topics(options.topic)
    root = manifest.course_root()
    impl = _impl_folder(options.impl, root)
    _output_file(options.json)
    console = commandline.console(sys.stderr if options.json == "-" else None)
    console.print(f"Grading {impl} ({len(topics)} topic{'s' * (len(topics) != 1)})")

    def progress(result: grading.TopicResult) -> None:
        tests = f"{_passed(result)} tests passed" if result.tests else result.message.splitlines()[0]
        console.print(
            f"  {result.id:<22} [{STATUS_STYLE[result.status]}]{result.status:<5}[/] "
            f"{result.score:5.1f} / {result.max_score:<3g} {tests} ({result.duration:.1f} s)"
        )

    cleanup.exit_on_sigterm()
    runner.become_reaper()
    try:
        graded = grading.grade(
            topics,
            impl,
            root,
            jobs=options.jobs,
            start_method=options.start_method,
            on_topic=progress,
            digest=os.environ.get(seal.DIGEST_VARIABLE),
        )
    except seal.SealError as exc:
        print(f"conclab grade: {exc}", file=sys.stderr)
        return 2
    _print_summary(console, graded)
    if options.report_fd is not None:
        try:
            _send(options.report_fd, graded.to_json())
        except OSError as exc:
            print(f"conclab grade: cannot send the report: {exc}", file=sys.stderr)
            return 2
    if options.json:
        data = graded.to_gradescope() if options.format == "gradescope" else graded.to_json()
        try:
            grading.write_json(options.json, data)
        except OSError as exc:
            print(f"conclab grade: cannot write {options.json}: {exc}", file=sys.stderr)
            return 2
    return 0 if graded.status == "pass" else 1


def _send(fd: int, data: dict) -> None:
    with open(fd, "w", encoding="utf-8", closefd=True) as pipe:
        json.dump(data, pipe)


def _passed(topic) -> str:
    judged = [t for t in topic.tests if t.status != "skip"]
    skipped = len(topic.tests) - len(judged)
    return f"{sum(t.status == 'pass' for t in judged)}/{len(judged)}" + (f" ({skipped} skipped)" if skipped else "")


def wrapped(text: str, width: int) -> list[str]:
    """The whole of a message, each line wrapped at `width` between words (a line's own
    indentation kept on its continuation lines), nothing cut."""
    lines = []
    for line in text.strip("\n").splitlines() or [""]:
        indent = line[: len(line) - len(line.lstrip())]
        lines += textwrap.wrap(
            line,
            width=max(40, width),
            subsequent_indent=indent + "  ",
            break_long_words=False,
            break_on_hyphens=False,
        ) or [""]
    return lines


def _print_summary(console, graded) -> None:
    from rich.table import Table

    table = Table(title=None, show_edge=False, pad_edge=False)
    for column, justify in (("topic", "left"), ("status", "left"), ("points", "right"), ("tests passed", "right")):
        table.add_column(column, justify=justify)
    for topic in graded.topics:
        table.add_row(
            topic.id,
            f"[{STATUS_STYLE[topic.status]}]{topic.status}[/]",
            f"{topic.score:.1f} / {topic.max_score:g}",
            _passed(topic) if topic.tests else "-",
        )
    table.add_section()
    table.add_row(
        "total",
        f"[{STATUS_STYLE[graded.status]}]{graded.status}[/]",
        f"{graded.score:.1f} / {graded.max_score:g}",
        "",
        end_section=True,
    )
    console.print()
    console.print(table)
    firsts = []
    for topic in graded.topics:
        failing = [t for t in topic.tests if t.status == "fail"]
        if topic.status == "error":
            firsts.append((topic.id, topic.message))
        elif failing:
            firsts.append((topic.id, f"{failing[0].name}:\n{failing[0].message}"))
    if firsts:
        console.print("\nWhere to look first:")
        for topic_id, text in firsts:
            console.print(f"  {topic_id}", markup=False, highlight=False)
            for line in wrapped(text, console.width - 4):
                console.print("    " + line, markup=False, highlight=False, soft_wrap=True)
    console.print(f"\nGraded in {graded.duration:.0f} s.")


def run_grade_all(options: argparse.Namespace) -> int:
    folder = Path(options.submissions).resolve()  # each submission is graded from the course's folder
    out = Path(options.out)
    topics = commandline.topics(options.topic)
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such folder")
    if not gradeall.submissions(folder):
        raise UsageError(f"{folder} has no submission folders (one sub-folder per student)")
    if not out.resolve().parent.is_dir():
        raise UsageError(f"--out {out}: the folder {out.resolve().parent} does not exist")
    keep = Path(options.reports) if options.reports else None
    if keep is not None and keep.exists() and not keep.is_dir():
        raise UsageError(f"--reports {keep}: not a folder")
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    cleanup.exit_on_sigterm()
    runner.become_reaper()
    started = time.monotonic()
    try:
        rows = gradeall.grade_all(folder, out, topics, jobs=options.jobs, timeout=options.timeout, keep=keep)
    except seal.SealError as exc:
        print(f"conclab grade-all: {exc} Nothing was written to {out}.", file=sys.stderr)
        return 2
    broken = [row for row in rows if not row.scores]
    print(
        f"Wrote {out}: {len(rows)} submissions in {time.monotonic() - started:.0f} s"
        + (f"; {len(broken)} could not be graded ({', '.join(r.student for r in broken)})" if broken else ""),
        file=sys.stderr,
    )
    return 1 if broken else 0
