"""`conclab grade-all SUBMISSIONS_DIR --out grades.csv`: a whole class at once.

Each sub-folder of SUBMISSIONS_DIR is one student's checkout (its `exercises/`, or the
topic folders themselves).  Each is graded by `conclab grade` in a child process of its
own, as many at a time as there are usable CPUs (each grades its topics one after
another), with a time limit; a submission that crashes, hangs or cannot be read costs
its own row only, marked with the reason.  The CSV has one row per student, one column
per topic, the total, a status and notes.

Only this process writes what grade-all leaves: each `conclab grade` sends its report over
a pipe it inherits (no file name a grading run could learn), and the CSV and the kept
reports are written here, each whole, once every run and whatever it started has ended.
Each submission gets a temporary folder and a lock folder of its own (machine.py).
"""

from __future__ import annotations

import csv
import io
import json
import sys
import tempfile
import time
from concurrent.futures import as_completed
from dataclasses import dataclass, field
from pathlib import Path

from conclab import manifest
from conclab.core import files, machine, pipes
from conclab.core.cpus import usable_cpus

from . import grade, runner, seal


@dataclass
class Row:
    student: str
    scores: dict[str, float] = field(default_factory=dict)  # topic id -> points
    status: str = "error"  # pass, fail or error
    notes: str = ""
    duration: float = 0.0
    statuses: dict[str, str] = field(default_factory=dict)  # topic id -> pass, fail or error
    problems: dict[str, str] = field(default_factory=dict)  # topic id -> why it is an error
    unmeasured: list[str] = field(default_factory=list)  # topics with tests that could not be measured
    reported: list[dict] = field(default_factory=list)  # the topics of the last report taken, as sent

    @property
    def total(self) -> float:
        return round(sum(self.scores.values()), 2)

    def take(self, data: dict) -> None:
        """The topics of a report: their points, statuses and problems (this row's, for the
        topics it has; the others are kept)."""
        self.reported = data["topics"]
        for topic in data["topics"]:
            self.scores[topic["id"]] = float(topic["score"])
            self.statuses[topic["id"]] = topic["status"]
            self.problems.pop(topic["id"], None)
            if topic["status"] == "error" and topic["message"]:
                self.problems[topic["id"]] = topic["message"].splitlines()[0]
        self.unmeasured = [
            t["id"]
            for t in data["topics"]
            if t["status"] == "error" and any(x["status"] == "error" for x in t["tests"])
        ] + [t for t in self.unmeasured if t not in {x["id"] for x in data["topics"]}]
        values = self.statuses.values()
        self.status = "error" if "error" in values else "pass" if all(v == "pass" for v in values) else "fail"
        self.notes = "; ".join(f"{topic}: {why}" for topic, why in sorted(self.problems.items()))


def submissions(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def implementation_of(submission: Path, topics: list[manifest.Topic]) -> Path | None:
    """The folder of topic folders in a student's checkout: its exercises/, or itself."""
    for candidate in (submission / "exercises", submission):
        if any((candidate / t.id).is_dir() for t in topics):
            return candidate
    return None


MAX_REPORT_BYTES = 64 * 1024 * 1024  # far more than any report of every topic


def submission_timeout(topics: list[manifest.Topic]) -> float:
    """Every topic may use its whole time one after the other, and then some."""
    return sum(grade.topic_timeout(t) for t in topics) + 60


def grade_submission(
    submission: Path,
    topics: list[manifest.Topic],
    root: Path,
    timeout: float,
    keep: Path | None,
    running: set,
    snapshot: seal.Snapshot,
    kept_as: str = "",
) -> Row:
    """One student's row; the report and log kept in `keep` as STUDENT{kept_as}.json/.log."""
    snapshot.check(root)  # no submission is graded with graders an earlier one changed
    row = Row(submission.name)
    started = time.monotonic()
    impl = implementation_of(submission, topics)
    if impl is None:
        row.notes = "no exercises/ folder with topic folders in it"
        return row
    with tempfile.TemporaryDirectory(prefix="conclab-grade-all-") as tmp:
        returncode, output, data = _run(impl, topics, root, timeout, running, snapshot, Path(tmp))
        row.duration = time.monotonic() - started
    if keep:
        files.replace(keep / f"{submission.name}{kept_as}.log", output, new_mode=0o600)
        if data is not None:
            report = json.dumps(data, indent=2) + "\n"
            files.replace(keep / f"{submission.name}{kept_as}.json", report, new_mode=0o600)
    if returncode == -1:
        row.notes = f"grading did not finish within {timeout:g} s"
        return row
    if data is None or returncode not in (0, 1):
        last = [line for line in output.splitlines() if line.strip()][-1:] or ["no output"]
        row.notes = f"grading failed (exit status {returncode}): {last[0][:200]}"
        return row
    row.take(data)
    return row


def _run(
    impl: Path,
    topics: list[manifest.Topic],
    root: Path,
    timeout: float,
    running: set,
    snapshot: seal.Snapshot,
    tmp: Path,
) -> tuple[int, str, dict | None]:
    """Grade one submission's topics with `conclab grade`, its temporary files and its locks in
    `tmp`: (exit status, output, the report it sent or None)."""
    command = [sys.executable, "-m", "conclab", "grade", "--impl", str(impl), "--jobs", "1"]
    for topic in topics:
        command += ["--topic", topic.id]
    env = runner.child_env(root)
    env[seal.DIGEST_VARIABLE] = snapshot.digest
    env["TMPDIR"] = str(tmp)  # a run killed for its time keeps no temporary files of its own anywhere else
    env[machine.FOLDER_VARIABLE] = machine.private_folder(tmp / "locks")  # with the machine's locks in it
    if not grade.CHANNEL:  # no inherited pipes (Windows): a file in the submission's own folder
        path = tmp / "report.json"
        returncode, output = runner.run_in_own_group([*command, "--json", str(path)], root, env, timeout, running)
        try:
            return returncode, output, _report(path.read_bytes())
        except OSError:
            return returncode, output, None
    inbox = pipes.Inbox(MAX_REPORT_BYTES, name="conclab-report")
    try:
        returncode, output = runner.run_in_own_group(
            [*command, f"--report-fd={inbox.fd}"],
            root,
            env,
            timeout,
            running,
            pass_fds=(inbox.fd,),
            on_start=inbox.handed_over,
        )
    finally:
        inbox.close(grace=1.0)
    return returncode, output, None if inbox.overflowed else _report(bytes(inbox.data))


def _report(sent: bytes) -> dict | None:
    """The report a `conclab grade` sent, if it is a whole one."""
    try:
        data = json.loads(sent.decode("utf-8"))
    except ValueError:
        return None
    return data if isinstance(data, dict) and isinstance(data.get("topics"), list) else None


def write_csv(path: Path, rows: list[Row], topics: list[manifest.Topic]) -> None:
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(["student", *[t.id for t in topics], "total", "max", "status", "notes"])
    maximum = sum(t.points for t in topics)
    for row in rows:
        cells = [f"{row.scores[t.id]:g}" if t.id in row.scores else "" for t in topics]
        writer.writerow([row.student, *cells, f"{row.total:g}", maximum, row.status, row.notes])
    files.replace(path, text.getvalue(), new_mode=0o600)  # grades are for the instructor's eyes


def grade_all(
    folder: Path,
    out: Path,
    topics: list[manifest.Topic],
    jobs: int | None = None,
    timeout: float | None = None,
    keep: Path | None = None,
    stream=None,
) -> list[Row]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    root = manifest.course_root()
    snapshot = seal.Snapshot.of(root)
    students = submissions(folder)
    jobs = max(1, jobs or usable_cpus())
    timeout = timeout or submission_timeout(topics)
    console = Console(file=stream or sys.stderr, highlight=False)
    console.print(f"Grading {len(students)} submissions in {folder}, {jobs} at a time")
    rows: dict[str, Row] = {}
    maximum = sum(t.points for t in topics)
    with (
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=not console.is_terminal,
        ) as progress,
        runner.child_runs(jobs, "grade-all") as (pool, running),
    ):
        task = progress.add_task("graded", total=len(students))
        futures = [pool.submit(grade_submission, s, topics, root, timeout, keep, running, snapshot) for s in students]
        for future in as_completed(futures):
            row = future.result()
            rows[row.student] = row
            progress.advance(task)
            if not console.is_terminal:
                console.print(
                    f"  [{len(rows)}/{len(students)}] {row.student}: {row.total:g} / {maximum} "
                    f"{row.status} ({row.duration:.0f} s){' - ' + row.notes if row.notes else ''}",
                    markup=False,
                    soft_wrap=True,
                )
    ordered = [rows[s.name] for s in students]
    _grade_unmeasured_again(ordered, folder, topics, root, keep, snapshot, console)
    write_csv(out, ordered, topics)
    return ordered


def _grade_unmeasured_again(
    rows: list[Row],
    folder: Path,
    topics: list[manifest.Topic],
    root: Path,
    keep: Path | None,
    snapshot: seal.Snapshot,
    console,
) -> None:
    """Topics with a test that could not be measured (other programs had the CPUs) are graded
    again at the end, one submission at a time, with nothing else of the class running."""
    again = [row for row in rows if row.unmeasured]
    if not again:
        return
    count = sum(len(row.unmeasured) for row in again)
    console.print(f"Grading again, one at a time, {count} topic(s) that could not be measured on a busy machine")
    with runner.child_runs(1, "grade-all") as (pool, running):
        for row in again:
            redo = [t for t in topics if t.id in row.unmeasured]
            timeout = submission_timeout(redo)
            second = pool.submit(
                grade_submission, folder / row.student, redo, root, timeout, keep, running, snapshot, ".again"
            ).result()
            if second.statuses:
                row.take({"topics": second.reported})
            console.print(
                f"  {row.student}: {', '.join(t.id for t in redo)} graded again: "
                + (", ".join(f"{t.id} {second.statuses.get(t.id, 'not graded')}" for t in redo)),
                markup=False,
            )
