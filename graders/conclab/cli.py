"""The `conclab` command: one parser, in which the module that runs each command registers it.

Each command's `run(options)` returns the exit status; a UsageError (a mistake in how the
command was called) is said in one line on standard error and ends it with status 2, as
argparse does for the mistakes it finds itself.
"""

from __future__ import annotations

import argparse
import sys

import conclab
from conclab.commandline import UsageError
from conclab.dev import commands as dev_commands
from conclab.grading import commands as grading_commands
from conclab.ship import export, release
from conclab.student import commands as student_commands


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="conclab",
        description="concurrency-lab: exercises in Python concurrency, "
        "graded by hidden tests that catch deadlocks and races.",
    )
    top.add_argument("--version", action="version", version=f"conclab {conclab.__version__}")
    commands = top.add_subparsers(dest="command", required=True)
    for module in (student_commands, grading_commands, release, export, dev_commands):
        module.register(commands)
    return top


def main(argv: list[str] | None = None) -> int:
    options = parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return options.run(options)
    except UsageError as exc:
        print(f"{options.prog}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
