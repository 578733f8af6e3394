"""The student commands: `conclab list`, `check`, `hint`, `watch` and `reset`."""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

from conclab import commandline, manifest
from conclab.commandline import TOPIC_HELP, UsageError
from conclab.core import cleanup

from . import screens, work


def register(commands) -> None:
    commandline.command(
        commands,
        "list",
        _student(run_list),
        "every topic, its status and points, and your progress",
        "Every topic with its status (not started, failing, passing) and points, and your progress.\n"
        "Topics changed since their last check are checked first.",
    )
    parser = commandline.command(
        commands,
        "check",
        _student(run_check),
        "run a topic's public tests and explain the first problem",
        "Run a topic's public tests and explain the first problem in plain words.\n"
        "Exit status 0 when they all pass, 1 when one fails.",
    )
    parser.add_argument("topic", metavar="TOPIC", help=TOPIC_HELP)
    parser = commandline.command(
        commands,
        "hint",
        _student(run_hint),
        "one more hint for a topic each time",
        "Show the next hint for a topic: from a nudge to the answer, one more each time.",
    )
    parser.add_argument("topic", metavar="TOPIC", help=TOPIC_HELP)
    parser.add_argument("--all", action="store_true", help="show every hint you have seen so far")
    parser = commandline.command(
        commands,
        "watch",
        _student(run_watch),
        "check the topic you work on each time you save it",
        "Check the topic you work on each time you save one of its files, and move on to the "
        "next topic once it passes.\nA save while its tests still run starts them over. "
        "Ctrl-C quits.",
    )
    parser.add_argument(
        "topic", metavar="TOPIC", nargs="?", help="start with this topic (default: the first one that does not pass)"
    )
    parser = commandline.command(
        commands,
        "reset",
        _student(run_reset),
        "put a topic's original stub back (asks first)",
        "Put the original stub of a topic back in place of your module (asks first).",
    )
    parser.add_argument("topic", metavar="TOPIC", help=TOPIC_HELP)
    parser.add_argument("--yes", action="store_true", help="do not ask")


def _student(run):
    """A student command, run with the course and the topic it names (if any) found, or a clear
    error; Ctrl-C and SIGTERM stop it (and the tests it runs) with a word, not a traceback."""

    @functools.wraps(run)
    def command(options: argparse.Namespace) -> int:
        try:
            root = manifest.course_root()
        except manifest.ManifestError as exc:
            raise UsageError(str(exc)) from None
        topic = commandline.topic(options.topic) if getattr(options, "topic", None) else None
        cleanup.exit_on_sigterm()
        try:
            return run(options, root, topic)
        except KeyboardInterrupt:  # Ctrl-C: the tests it ran are stopped already (run_in_own_group)
            print("\nStopped.", file=sys.stderr)
            return 130

    return command


def run_list(options: argparse.Namespace, root: Path, topic: None) -> int:
    console = commandline.console(soft_wrap=True)
    progress = work.Progress(root)
    statuses = work.statuses(root, progress)
    unchecked = [t for t in manifest.topics() if statuses[t.id] == work.UNCHECKED]
    if unchecked:  # changed since their last check: check them now
        from rich.progress import Progress

        with Progress(console=commandline.console(sys.stderr), transient=True) as bar:
            task = bar.add_task(
                f"Checking {len(unchecked)} topic{'s' * (len(unchecked) != 1)} you changed", total=len(unchecked)
            )
            work.check_all(unchecked, root, progress, on_done=lambda done: bar.advance(task))
        statuses = work.statuses(root, progress)
    screens.show_list(console, statuses)
    return 0


def run_check(options: argparse.Namespace, root: Path, topic: manifest.Topic) -> int:
    from contextlib import nullcontext

    console = commandline.console(soft_wrap=True)
    progress = work.Progress(root)
    with console.status(f"Running the public tests of {topic.id}...") if console.is_terminal else nullcontext():
        done = work.check(topic, root, progress)
    screens.show_check(console, done, root, progress)
    return 0 if done.passed else 1


def run_hint(options: argparse.Namespace, root: Path, topic: manifest.Topic) -> int:
    console = commandline.console(soft_wrap=True)
    progress = work.Progress(root)
    if not options.all:
        seen = work.next_hint(topic, progress)
        screens.show_hints(console, topic, seen, seen)
    elif progress.hints_seen(topic):
        screens.show_hints(console, topic, 1, progress.hints_seen(topic))
    else:
        console.print(f"No hints of {topic.id} seen yet: `conclab hint {topic.number}` shows the first.")
    return 0


def run_watch(options: argparse.Namespace, root: Path, topic: manifest.Topic | None) -> int:
    from . import watch

    return watch.watch(root, topic, commandline.console(soft_wrap=True))


def run_reset(options: argparse.Namespace, root: Path, topic: manifest.Topic) -> int:
    path = work.module_path(topic, root)
    shown = screens.relative(path, root)
    stub = work.original_stub(topic, root)
    if stub is None:
        raise UsageError(f"cannot find the original stub of {topic.id} in this copy of the course; nothing changed")
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
    work.reset(topic, root, work.Progress(root), stub)
    print(f"{shown} is the original stub again. The lesson: exercises/{topic.id}/README.md.")
    return 0
