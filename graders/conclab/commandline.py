"""What the `conclab` commands (and the pytest plugin's options) share: the start methods, the
error for a command-line mistake, and the arguments that several commands take."""

from __future__ import annotations

import argparse

from conclab import manifest

#: The multiprocessing start methods a grading run may use.
START_METHODS = ("fork", "forkserver", "spawn")

TOPIC_HELP = "a topic: 03, 03_condition or condition"


class UsageError(Exception):
    """A mistake in how a command was called: it says so, changes nothing and exits with 2."""


def at_least_one(value: str) -> int:
    """argparse type of --jobs and --runs: a whole number of at least 1."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def more_than_zero(value: str) -> float:
    """argparse type of a time in seconds: a number above 0."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not number > 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return number


def add_topics(parser: argparse.ArgumentParser, what: str = "only this topic") -> None:
    """--topic NN, repeatable; the topics are checked against the manifest by the command."""
    parser.add_argument(
        "--topic",
        metavar="NN",
        action="append",
        default=[],
        help=f"{what} (03, 03_condition or condition); repeat for more than one",
    )


def add_start_method(parser: argparse.ArgumentParser, repeatable: bool = False) -> None:
    if repeatable:
        parser.add_argument(
            "--start-method",
            choices=START_METHODS,
            action="append",
            default=[],
            help="run every check under this multiprocessing start method (repeatable: each in turn)",
        )
    else:
        parser.add_argument(
            "--start-method",
            choices=START_METHODS,
            help="the multiprocessing start method of the process topics (default: the platform's)",
        )


def command(commands, name: str, run, summary: str, description: str | None = None) -> argparse.ArgumentParser:
    """A sub-command: `summary` is its line in the list of commands, `description` the top of
    its own --help (the summary when not given); `run(options)` is what it does and returns
    the exit status."""
    parser = commands.add_parser(
        name, help=summary, description=description or summary, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.set_defaults(run=run, prog=parser.prog)
    return parser


def topics(keys: list[str]) -> list[manifest.Topic]:
    """The topics named on the command line (every topic if none is), or a UsageError."""
    try:
        return manifest.select(keys)
    except manifest.ManifestError as exc:
        raise UsageError(str(exc)) from None


def topic(key: str) -> manifest.Topic:
    try:
        return manifest.find(key)
    except manifest.ManifestError as exc:
        raise UsageError(str(exc)) from None


def console(stream=None, soft_wrap: bool = False):
    """A console for a command's output.  With soft_wrap, long lines stay whole when the
    output is not a terminal (a file, a pipe, a test reading it); on a terminal they are
    broken between words, never inside one."""
    import sys

    from rich.console import Console

    out = Console(file=stream or sys.stdout, highlight=False)
    out.soft_wrap = soft_wrap and not out.is_terminal
    return out
