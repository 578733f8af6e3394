"""`conclab watch`: check the topic the student works on each time a file of it is saved.

It starts with the first topic that does not pass yet (or the one named), runs that topic's
public tests whenever a file in its folder changes, and moves on to the next topic once they
pass.  Saving a file of another topic switches to that topic.  A save while the tests still
run (a deadlock can keep them waiting for many seconds) stops them and starts over on the
new version.  The file watcher is watchfiles (inotify, FSEvents or ReadDirectoryChangesW
underneath): a save is seen within milliseconds, without polling.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from conclab import manifest
from conclab.grading import runner

from . import screens, work

SETTLE_MS = 50  # an editor's save is often several writes: wait this long after the last one
LOOK_MS = 100  # how often the watcher looks whether a check has finished


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
    console.print(
        f"[bold]conclab watch[/]: checking [bold]{topic.id}[/] each time you save a file of it "
        f"(exercises/{topic.id}/). Ctrl-C to quit.",
        soft_wrap=True,
    )
    console.rule(style="dim")


class Checking:
    """One run of a topic's public tests, in a thread of its own, so that the watcher keeps
    watching meanwhile and a newer save can stop it (a deadlocked submission can keep its
    tests waiting for many seconds on a result that is already out of date)."""

    def __init__(self, topic: manifest.Topic, root: Path, why: str):
        self.topic, self.why, self.started = topic, why, time.monotonic()
        self._running: set = set()  # the pytest process, while it runs
        self._outcome: list = []  # the Check, or what the check raised
        self._thread = threading.Thread(target=self._run, args=(root,), name=f"check {topic.id}", daemon=True)
        self._thread.start()

    def _run(self, root: Path) -> None:
        try:
            self._outcome.append(work.check(self.topic, root, running=self._running))
        except BaseException as error:  # handed to the watcher's thread by result()
            self._outcome.append(error)

    def finished(self) -> bool:
        return not self._thread.is_alive()

    def result(self) -> work.Check:
        self._thread.join()
        if isinstance(self._outcome[0], BaseException):
            raise self._outcome[0]
        return self._outcome[0]

    def stop(self) -> None:
        """Kill the tests and everything they started; their outcome is thrown away."""
        killed = set()
        while self._thread.is_alive():  # the pytest process may not have started yet
            for proc in list(self._running - killed):
                runner.kill_tree(proc)
                killed.add(proc)
            self._thread.join(0.05)


def start_check(console: Console, topic: manifest.Topic, root: Path, why: str, note: str = "") -> Checking:
    console.clear()
    header(console, topic)
    console.print(f"{why}: running the public tests of {topic.id}...{note}", highlight=False)
    return Checking(topic, root, why)


def show_check(console: Console, checking: Checking, done: work.Check, root: Path, progress: work.Progress) -> None:
    console.clear()
    header(console, checking.topic)
    console.print(
        f"[dim]{checking.why}; checked at {time.strftime('%H:%M:%S')} in {time.monotonic() - checking.started:.1f} s[/]"
    )
    screens.show_check(console, done, root, progress)


def introduce(console: Console, topic: manifest.Topic, root: Path) -> None:
    """The screen for a topic nobody has touched yet: where to start."""
    console.clear()
    header(console, topic)
    console.print(
        f"Next: [bold]{topic.id}[/] ({escape(topic.title)}). Read exercises/{topic.id}/README.md, then "
        f"work in {screens.relative(work.module_path(topic, root), root)}: its tests run when you save."
    )


def watch(root: Path, start: manifest.Topic | None, console: Console) -> int:
    import watchfiles

    progress = work.Progress(root)
    statuses = work.statuses(root, progress)
    topic = start or screens.next_topic(None, statuses)
    if topic is None:
        console.print(screens.ALL_PASS)
        return 0
    checking: Checking | None = None
    try:
        if statuses[topic.id] == work.NOT_STARTED:
            introduce(console, topic, root)
        else:
            checking = start_check(console, topic, root, "Starting")
        for changes in watchfiles.watch(
            root / "exercises",
            step=SETTLE_MS,
            rust_timeout=LOOK_MS,
            yield_on_timeout=True,
            raise_interrupt=True,
            watch_filter=lambda change, path: path.endswith(".py"),
        ):
            if checking is not None and checking.finished():
                done, shown = checking.result(), checking
                checking = None
                progress.record(done, root)
                progress.save()
                show_check(console, shown, done, root, progress)
                if done.passed:
                    upcoming = screens.next_topic(shown.topic, work.statuses(root, progress))
                    if upcoming is None:
                        console.print(
                            "\n[green]Every topic passes its public tests.[/] Still watching; Ctrl-C to quit."
                        )
                    else:
                        console.print(f"\nOn to [bold]{upcoming.id}[/]: its tests run when you save one of its files.")
                        topic = upcoming
            saved = [(t, path) for _, path in changes if (t := topic_of(path, root)) is not None]
            if not saved:
                continue
            mine = [path for t, path in saved if t == topic]
            if not mine:  # the student went to another topic: follow
                topic, mine = saved[-1][0], [saved[-1][1]]
            why = f"Saved {screens.relative(Path(mine[0]), root)}"
            console.print(f"\n{why}: checking {topic.id} again...", highlight=False)
            note = ""
            if checking is not None:  # its outcome would be out of date
                checking.stop()
                note = (
                    "\n(The tests still running on your previous version were stopped: their result was out of date.)"
                )
            checking = start_check(console, topic, root, why, note)
    except KeyboardInterrupt:
        console.print("\nStopped watching.")
    finally:
        if checking is not None:
            checking.stop()
    return 0
