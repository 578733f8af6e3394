"""`conclab watch`: check the topic the student works on each time a file of it is saved.

It starts with the first topic that does not pass yet (or the one named), runs that topic's
public tests whenever a file in its folder changes, and moves on to the next topic once they
pass.  Saving a file of another topic switches to that topic.  The file watcher is
watchfiles (inotify, FSEvents or ReadDirectoryChangesW underneath): a save is seen within
milliseconds, without polling.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from . import manifest, screens, student

SETTLE_MS = 50  # an editor's save is often several writes: wait this long after the last one


def topic_of(path: str, root: Path) -> manifest.Topic | None:
    """The topic whose folder holds the changed file, if it is one of its Python files."""
    try:
        parts = Path(path).resolve().relative_to((root / "exercises").resolve()).parts
    except ValueError:
        return None
    if len(parts) != 2 or not parts[1].endswith(".py"):
        return None
    for topic in manifest.topics():
        if topic.id == parts[0]:
            return topic
    return None


def header(console: Console, topic: manifest.Topic) -> None:
    console.print(f"[bold]conclab watch[/]: checking [bold]{topic.id}[/] each time you save a file of it "
                  f"(exercises/{topic.id}/). Ctrl-C to quit.", soft_wrap=True)
    console.rule(style="dim")


def run_check(console: Console, topic: manifest.Topic, root: Path, progress: student.Progress,
              why: str) -> student.Check:
    console.clear()
    header(console, topic)
    console.print(f"{why}: running the public tests of {topic.id}...", highlight=False)
    started = time.monotonic()
    done = student.check(topic, root, progress)
    console.clear()
    header(console, topic)
    console.print(f"[dim]{why}; checked at {time.strftime('%H:%M:%S')} in {time.monotonic() - started:.1f} s[/]")
    screens.show_check(console, done, root, progress)
    return done


def introduce(console: Console, topic: manifest.Topic, root: Path) -> None:
    """The screen for a topic nobody has touched yet: where to start."""
    console.clear()
    header(console, topic)
    console.print(f"Next: [bold]{topic.id}[/] ({escape(topic.title)}). Read exercises/{topic.id}/README.md, then "
                  f"work in {screens.relative(student.module_path(topic, root), root)}: its tests run when you save.")


def watch(root: Path, start: manifest.Topic | None, console: Console) -> int:
    import watchfiles

    progress = student.Progress(root)
    statuses = student.statuses(root, progress)
    topic = start or screens.next_topic(None, statuses)
    if topic is None:
        console.print(screens.ALL_PASS)
        return 0
    try:
        if statuses[topic.id] == student.NOT_STARTED:
            introduce(console, topic, root)
        else:
            run_check(console, topic, root, progress, "Starting")
        for changes in watchfiles.watch(root / "exercises", step=SETTLE_MS, raise_interrupt=True,
                                        watch_filter=lambda change, path: path.endswith(".py")):
            saved = [(t, path) for _, path in changes if (t := topic_of(path, root)) is not None]
            if not saved:
                continue
            mine = [path for t, path in saved if t == topic]
            if not mine:  # the student went to another topic: follow
                topic, mine = saved[-1][0], [saved[-1][1]]
            why = f"Saved {screens.relative(Path(mine[0]), root)}"
            console.print(f"\n{why}: checking {topic.id} again...", highlight=False)
            done = run_check(console, topic, root, progress, why)
            if done.passed:
                upcoming = screens.next_topic(topic, student.statuses(root, progress))
                if upcoming is None:
                    console.print("\n[green]Every topic passes its public tests.[/] Still watching; Ctrl-C to quit.")
                    continue
                console.print(f"\nOn to [bold]{upcoming.id}[/]: its tests run when you save one of its files.")
                topic = upcoming
    except KeyboardInterrupt:
        console.print("\nStopped watching.")
    return 0
