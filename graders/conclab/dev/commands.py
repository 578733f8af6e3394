"""`conclab dev ...`: the maintainers' commands, in one group."""

from __future__ import annotations

from conclab.ship import workflow

from . import bench, bench_grading, check, new


def register(commands) -> None:
    parser = commands.add_parser(
        "dev",
        help="the maintainers' tools: check, bench, bench-grading, workflow, new",
        description="The course's maintainers' tools.",
    )
    tools = parser.add_subparsers(dest="tool", required=True)
    for module in (check, bench, bench_grading, workflow, new):
        module.register(tools)
