"""The `conclab` command."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import cleanup, devcheck, manifest


def _console(stream=None, soft_wrap: bool = False):
    """A console for a command's output.  With soft_wrap, long lines stay whole when the
    output is not a terminal (a file, a pipe, a test reading it); on a terminal they are
    broken between words, never inside one."""
    from rich.console import Console

    console = Console(file=stream or sys.stdout, highlight=False)
    console.soft_wrap = soft_wrap and not console.is_terminal
    return console


def _impl_folder(value: str | None, root: Path) -> Path:
    impl = Path(value).resolve() if value else root / "exercises"
    if not impl.is_dir():
        raise manifest.ManifestError(f"--impl {value}: no such folder")
    return impl


def _output_file(value: str | None) -> None:
    if value and value != "-":
        parent = Path(value).resolve().parent
        if not parent.is_dir():
            raise manifest.ManifestError(f"--json {value}: the folder {parent} does not exist")


STATUS_STYLE = {"pass": "green", "fail": "red", "error": "bold red"}


def _grade(options: argparse.Namespace) -> int:
    from . import grading

    if options.format == "gradescope" and not options.json:
        options.json = "results.json"
    try:
        topics = manifest.select(options.topic)
        root = manifest.course_root()
        impl = _impl_folder(options.impl, root)
        _output_file(options.json)
        if options.jobs is not None and options.jobs < 1:
            raise manifest.ManifestError("--jobs must be at least 1")
    except manifest.ManifestError as exc:
        print(f"conclab grade: {exc}", file=sys.stderr)
        return 2
    console = _console(sys.stderr if options.json == "-" else None)
    console.print(f"Grading {impl} ({len(topics)} topic{'s' * (len(topics) != 1)})")

    def progress(result: grading.TopicResult) -> None:
        tests = f"{_passed(result)} tests passed" if result.tests else result.message.splitlines()[0]
        console.print(f"  {result.id:<22} [{STATUS_STYLE[result.status]}]{result.status:<5}[/] "
                      f"{result.score:5.1f} / {result.max_score:<3g} {tests} ({result.duration:.1f} s)")

    cleanup.exit_on_sigterm()
    graded = grading.grade(topics, impl, root, jobs=options.jobs, start_method=options.start_method,
                           on_topic=progress)
    _print_summary(console, graded)
    if options.json:
        data = graded.to_gradescope() if options.format == "gradescope" else graded.to_json()
        try:
            grading.write_json(options.json, data)
        except OSError as exc:
            print(f"conclab grade: cannot write {options.json}: {exc}", file=sys.stderr)
            return 2
    return 0 if graded.status == "pass" else 1


def _passed(topic) -> str:
    judged = [t for t in topic.tests if t.status != "skip"]
    skipped = len(topic.tests) - len(judged)
    return f"{sum(t.status == 'pass' for t in judged)}/{len(judged)}" + (f" ({skipped} skipped)" if skipped else "")


def _print_summary(console, graded) -> None:
    from rich.table import Table

    table = Table(title=None, show_edge=False, pad_edge=False)
    for column, justify in (("topic", "left"), ("status", "left"), ("points", "right"), ("tests passed", "right")):
        table.add_column(column, justify=justify)
    for topic in graded.topics:
        table.add_row(topic.id, f"[{STATUS_STYLE[topic.status]}]{topic.status}[/]",
                      f"{topic.score:.1f} / {topic.max_score:g}", _passed(topic) if topic.tests else "-")
    table.add_section()
    table.add_row("total", f"[{STATUS_STYLE[graded.status]}]{graded.status}[/]",
                  f"{graded.score:.1f} / {graded.max_score:g}", "", end_section=True)
    console.print()
    console.print(table)
    firsts = []
    for topic in graded.topics:
        failing = [t for t in topic.tests if t.status == "fail"]
        if topic.status == "error":
            firsts.append((topic.id, topic.message.splitlines()[0]))
        elif failing:
            firsts.append((topic.id, f"{failing[0].name}: {(failing[0].message.splitlines() or [''])[0]}"))
    if firsts:
        console.print("\nWhere to look first:")
        for topic_id, text in firsts:
            console.print(f"  {topic_id}: {text[:200]}", markup=False, soft_wrap=True)
    console.print(f"\nGraded in {graded.duration:.0f} s.")


def _grade_all(options: argparse.Namespace) -> int:
    from . import gradeall

    folder = Path(options.submissions)
    out = Path(options.out)
    try:
        topics = manifest.select(options.topic)
        if not folder.is_dir():
            raise manifest.ManifestError(f"{folder}: no such folder")
        if not gradeall.submissions(folder):
            raise manifest.ManifestError(f"{folder} has no submission folders (one sub-folder per student)")
        if not out.resolve().parent.is_dir():
            raise manifest.ManifestError(f"--out {out}: the folder {out.resolve().parent} does not exist")
        if options.jobs is not None and options.jobs < 1:
            raise manifest.ManifestError("--jobs must be at least 1")
        if options.timeout is not None and options.timeout <= 0:
            raise manifest.ManifestError("--timeout must be more than 0 seconds")
        keep = Path(options.reports) if options.reports else None
        if keep is not None and keep.exists() and not keep.is_dir():
            raise manifest.ManifestError(f"--reports {keep}: not a folder")
    except manifest.ManifestError as exc:
        print(f"conclab grade-all: {exc}", file=sys.stderr)
        return 2
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    cleanup.exit_on_sigterm()
    started = time.monotonic()
    rows = gradeall.grade_all(folder, out, topics, jobs=options.jobs, timeout=options.timeout, keep=keep)
    broken = [row for row in rows if not row.scores]
    print(f"Wrote {out}: {len(rows)} submissions in {time.monotonic() - started:.0f} s"
          + (f"; {len(broken)} could not be graded ({', '.join(r.student for r in broken)})" if broken else ""),
          file=sys.stderr)
    return 1 if broken else 0


def _student(options: argparse.Namespace) -> int:
    """A student command: the course and the topic it names (if any) found, or a clear error."""
    try:
        root = manifest.course_root()
        topic = manifest.find(options.topic) if getattr(options, "topic", None) else None
    except manifest.ManifestError as exc:
        print(f"conclab {options.command}: {exc}", file=sys.stderr)
        return 2
    cleanup.exit_on_sigterm()
    try:
        return options.run(options, root, topic)
    except KeyboardInterrupt:  # Ctrl-C: the tests it ran are stopped already (run_in_own_group)
        print("\nStopped.", file=sys.stderr)
        return 130


def _list(options: argparse.Namespace, root: Path, topic: None) -> int:
    from . import screens, student

    console = _console(soft_wrap=True)
    progress = student.Progress(root)
    statuses = student.statuses(root, progress)
    unchecked = [t for t in manifest.topics() if statuses[t.id] == student.UNCHECKED]
    if unchecked:  # changed since their last check: check them now
        from rich.progress import Progress

        with Progress(console=_console(sys.stderr), transient=True) as bar:
            task = bar.add_task(f"Checking {len(unchecked)} topic{'s' * (len(unchecked) != 1)} you changed",
                                total=len(unchecked))
            student.check_all(unchecked, root, progress, on_done=lambda done: bar.advance(task))
        statuses = student.statuses(root, progress)
    screens.show_list(console, statuses)
    return 0


def _check(options: argparse.Namespace, root: Path, topic: manifest.Topic) -> int:
    from contextlib import nullcontext

    from . import screens, student

    console = _console(soft_wrap=True)
    progress = student.Progress(root)
    with console.status(f"Running the public tests of {topic.id}...") if console.is_terminal else nullcontext():
        done = student.check(topic, root, progress)
    screens.show_check(console, done, root, progress)
    return 0 if done.passed else 1


def _hint(options: argparse.Namespace, root: Path, topic: manifest.Topic) -> int:
    from . import screens, student

    console = _console(soft_wrap=True)
    progress = student.Progress(root)
    if not options.all:
        seen = student.next_hint(topic, progress)
        screens.show_hints(console, topic, seen, seen)
    elif progress.hints_seen(topic):
        screens.show_hints(console, topic, 1, progress.hints_seen(topic))
    else:
        console.print(f"No hints of {topic.id} seen yet: `conclab hint {topic.number}` shows the first.")
    return 0


def _watch(options: argparse.Namespace, root: Path, topic: manifest.Topic | None) -> int:
    from . import watch

    return watch.watch(root, topic, _console(soft_wrap=True))


def _reset(options: argparse.Namespace, root: Path, topic: manifest.Topic) -> int:
    from . import screens, student

    path = student.module_path(topic, root)
    shown = screens.relative(path, root)
    stub = student.original_stub(topic, root)
    if stub is None:
        print(f"conclab reset: cannot find the original stub of {topic.id} in this copy of the course; "
              f"nothing changed", file=sys.stderr)
        return 2
    if path.is_file() and path.read_text(encoding="utf-8", errors="replace") == stub:
        print(f"{shown} is already the original stub: nothing to reset.")
        return 0
    if not options.yes:
        try:
            answer = input(f"Put the original stub back in {shown}? Your changes to it will be lost. [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("Nothing changed.")
            return 1
    student.reset(topic, root, student.Progress(root), stub)
    print(f"{shown} is the original stub again. The lesson: exercises/{topic.id}/README.md.")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["dev", "check"]:
        return devcheck.main(argv[2:])
    if argv[:1] == ["export"]:
        from . import export
        return export.main(argv[1:])
    if argv[:2] == ["dev", "workflow"]:
        from . import workflow
        return workflow.main(argv[2:])
    if argv[:2] == ["dev", "bench-grading"]:
        from . import bench_grading
        return bench_grading.main(argv[2:])
    if argv[:2] == ["dev", "bench"]:
        from . import bench
        return bench.main(argv[2:])
    parser = argparse.ArgumentParser(prog="conclab", description="concurrency-lab: exercises in Python concurrency")
    commands = parser.add_subparsers(dest="command", required=True)
    grade = commands.add_parser("grade", help="grade the exercises (or --impl DIR) topic by topic")
    grade.add_argument("--impl", metavar="DIR", help="folder of topic folders to grade (default: exercises/)")
    grade.add_argument("--topic", metavar="NN", action="append", default=[], help="only this topic (repeatable)")
    grade.add_argument("--json", metavar="FILE", help="write the report to FILE ('-' for standard output)")
    grade.add_argument("--format", choices=("conclab", "gradescope"), default="conclab",
                       help="the report's format: conclab's own JSON, or Gradescope's results.json "
                            "(written to results.json unless --json says where)")
    grade.add_argument("--jobs", type=int, metavar="N", help="grade N topics at a time (default: one more than the usable CPUs)")
    grade.add_argument("--start-method", choices=("fork", "forkserver", "spawn"),
                       help="multiprocessing start method for the process topics")
    grade_all = commands.add_parser("grade-all", help="grade every submission in a folder (one sub-folder per "
                                                      "student) into a CSV, several at a time")
    grade_all.add_argument("submissions", metavar="SUBMISSIONS_DIR")
    grade_all.add_argument("--out", metavar="CSV", required=True, help="the grades: a row per student, a column per topic")
    grade_all.add_argument("--topic", metavar="NN", action="append", default=[], help="only this topic (repeatable)")
    grade_all.add_argument("--jobs", type=int, metavar="N", help="grade N submissions at a time (default: the usable CPUs)")
    grade_all.add_argument("--timeout", type=float, metavar="S", help="seconds one submission may take in all "
                                                                       "(default: every topic's time limit added up)")
    grade_all.add_argument("--reports", metavar="DIR", help="keep each submission's JSON report and output here")
    commands.add_parser("export", help="`conclab export gradescope|classroom50|nbgrader OUT`: the course for another "
                                       "grading platform")
    release = commands.add_parser("release", help="write the student template (no solutions, no hidden graders)")
    release.add_argument("out", metavar="OUT")
    commands.add_parser("dev", help="`conclab dev check`: the course's own checks (solutions, stubs, mutants, "
                                    "variants); `conclab dev bench`: parallel speed-ups of the solutions; "
                                    "`conclab dev bench-grading`: how long grade and grade-all take; "
                                    "`conclab dev workflow`: writes the Classroom workflow from the manifest")
    listing = commands.add_parser("list", help="every topic, its status and points, and your progress")
    listing.set_defaults(run=_list)
    topic_help = "the topic: 03, 03_condition or condition"
    check = commands.add_parser("check", help="run a topic's public tests and explain the first problem")
    check.add_argument("topic", metavar="TOPIC", help=topic_help)
    check.set_defaults(run=_check)
    hint = commands.add_parser("hint", help="one more hint for a topic each time")
    hint.add_argument("topic", metavar="TOPIC", help=topic_help)
    hint.add_argument("--all", action="store_true", help="show every hint you have seen so far")
    hint.set_defaults(run=_hint)
    watch = commands.add_parser("watch", help="check the topic you work on each time you save it")
    watch.add_argument("topic", metavar="TOPIC", nargs="?", help="start with this topic (default: the first one "
                                                                   "that does not pass)")
    watch.set_defaults(run=_watch)
    reset = commands.add_parser("reset", help="put a topic's original stub back (asks first)")
    reset.add_argument("topic", metavar="TOPIC", help=topic_help)
    reset.add_argument("--yes", action="store_true", help="do not ask")
    reset.set_defaults(run=_reset)
    options = parser.parse_args(argv)
    if hasattr(options, "run"):
        return _student(options)
    if options.command == "grade":
        return _grade(options)
    if options.command == "grade-all":
        return _grade_all(options)
    if options.command == "release":
        from . import release as release_mod
        return release_mod.main([options.out])
    parser.error("use `conclab dev check` or `conclab dev bench`")
    return 2


if __name__ == "__main__":
    sys.exit(main())
