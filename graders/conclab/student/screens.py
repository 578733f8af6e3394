"""What the student commands print: `conclab list`, `check`, `hint` (and what `watch` redraws).

Colour and layout come from rich, which prints plain text when the output is not a terminal.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from conclab import manifest

from . import work

STATUS_STYLE = {
    work.PASSING: "green",
    work.FAILING: "red",
    work.NOT_STARTED: "dim",
    work.MISSING: "bold red",
    work.UNCHECKED: "yellow",
}
ALL_PASS = "Every topic passes its public tests. `conclab grade` (or your next push) runs the graders."
TEST_MARK = {
    "pass": ("ok  ", "green"),
    "fail": ("FAIL", "bold red"),
    "skip": ("skip", "yellow"),
    "error": ("n/m ", "yellow"),  # could not be measured on a busy machine
}


def relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _indented(console: Console, text: str, spaces: int = 4) -> Text:
    """`text` moved right by `spaces`.  On a terminal, a line too long for it is broken
    between words, its continuation as far in as the line itself (a timeline row or a line
    of code fits, and keeps its layout); elsewhere lines stay whole."""
    lines = []
    for line in text.rstrip().splitlines():
        line = " " * spaces + line if line else ""
        if console.is_terminal and len(line) > console.width:
            indent = " " * (len(line) - len(line.lstrip()))
            lines += textwrap.wrap(
                line, console.width, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False
            ) or [line]
        else:
            lines.append(line)
    return Text("\n".join(lines))


def _bar(done: int, total: int, console: Console, width: int = 28) -> str:
    filled = round(width * done / total) if total else 0
    full, empty = ("█", "░") if console.is_terminal and console.encoding.lower().startswith("utf") else ("#", "-")
    return f"[green]{full * filled}[/][dim]{empty * (width - filled)}[/]"


def next_topic(after: manifest.Topic | None, statuses: dict[str, str]) -> manifest.Topic | None:
    """The first topic after `after` (or from the start) that does not pass yet."""
    topics = list(manifest.topics())
    start = topics.index(after) + 1 if after is not None else 0
    for topic in topics[start:] + topics[:start]:
        if statuses.get(topic.id) != work.PASSING:
            return topic
    return None


def show_list(console: Console, statuses: dict[str, str]) -> None:
    topics = manifest.topics()
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    widths = [max(len(t.id) for t in topics), len(work.NOT_STARTED), len("points")]
    title_width = max(10, console.width - sum(widths) - 2 * len(widths))  # the title is cut short to fit
    table.add_column("topic", width=widths[0], no_wrap=True)
    table.add_column("", max_width=title_width, overflow="ellipsis", no_wrap=True)
    table.add_column("status", width=widths[1], no_wrap=True)
    table.add_column("points", width=widths[2], justify="right", no_wrap=True)
    for topic in topics:
        state = statuses[topic.id]
        table.add_row(topic.id, escape(topic.title), f"[{STATUS_STYLE[state]}]{state}[/]", str(topic.points))
    console.print(table, soft_wrap=False)
    passing = sum(statuses[t.id] == work.PASSING for t in topics)
    console.print()
    console.print(f"{_bar(passing, len(topics), console)} {passing} of {len(topics)} topics pass their public tests")
    upcoming = next_topic(None, statuses)
    if upcoming is None:
        console.print(ALL_PASS)
    else:
        console.print(
            f"Next: [bold]{upcoming.id}[/] ({escape(upcoming.title)}): "
            f"read exercises/{upcoming.id}/README.md, then `conclab check {upcoming.number}`."
        )


def show_check(console: Console, done: work.Check, root: Path, progress: work.Progress) -> None:
    topic, result = done.topic, done.result
    console.print(f"[bold]{topic.id}[/]: {escape(topic.title)}")
    module = relative(work.module_path(topic, root), root)
    if result.status == "error" and not result.tests:  # the tests could not run at all
        console.print("[bold red]The public tests could not run.[/]")
        console.print(_indented(console, result.message))
        console.print(f"\nLook at {module} first.")
        return
    for test in result.tests:
        mark, style = TEST_MARK[test.status]
        console.print(f"  [{style}]{mark}[/] {escape(test.name)}")
    passed, run = done.counts
    console.print()
    if done.passed:
        console.print(
            f"[green]All {run} public tests pass.[/] The graders check more when your work is graded "
            "(more threads, timeouts, races, speed-ups)."
        )
        upcoming = next_topic(topic, work.statuses(root, progress))
        if upcoming is not None:
            console.print(
                f"Next: [bold]{upcoming.id}[/] ({escape(upcoming.title)}): `conclab check {upcoming.number}`."
            )
        return
    console.print(f"[red]{passed} of {run} public tests pass.[/]")
    first = done.failures[0]
    console.print(f'\nThe first problem, in [bold]"{escape(first.name)}"[/]:')
    console.print(_indented(console, first.message or "(the test failed without a message)"))
    console.print(f"\nYour code: {module}.  The lesson: exercises/{topic.id}/README.md.")
    seen = progress.hints_seen(topic)
    if seen < len(topic.hints):
        console.print(f"Stuck? `conclab hint {topic.number}` gives a hint ({seen} of {len(topic.hints)} seen).")
    else:
        console.print(f"You have seen every hint: `conclab hint {topic.number} --all` shows them again.")


def show_hints(console: Console, topic: manifest.Topic, first: int, last: int) -> None:
    """Hints number `first` to `last` (counting from 1) of the topic."""
    for number in range(first, last + 1):
        console.print(f"[bold]Hint {number} of {len(topic.hints)}[/] for {topic.id} ({escape(topic.title)}):")
        console.print(_indented(console, topic.hints[number - 1], 2))
        console.print()
    if last < len(topic.hints):
        console.print(
            f"`conclab hint {topic.number}` again gives the next one; "
            f"`conclab hint {topic.number} --all` shows the ones you have seen."
        )
    else:
        console.print(
            f"That is the last hint. The lesson, exercises/{topic.id}/README.md, and the slides have the rest."
        )
