"""A grading run's own state, and setting the run up: the options, the implementation under
test on sys.path, the start method, the results file.

`run` is the state of the pytest run in this process (None before pytest_configure); every
other engine module reads it from here.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from conclab import manifest
from conclab.commandline import START_METHODS
from conclab.core import diagnose, guard
from conclab.kit import state

from . import chaos, integrity, report

MARKERS = (
    "weight(n): this test's share of its topic's points (default 1)",
    "no_chaos: run without forced thread switches (timing and speed-up tests)",
    "chaos(rate): force a thread switch at this share of the opcodes of student code (default 1/50)",
    "alone: a timing-sensitive test that must not share the machine with other tests",
)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("conclab", "concurrency-lab grading")
    group.addoption(
        "--impl", metavar="DIR", default=None, help="folder of topic folders to test (default: the course's exercises/)"
    )
    group.addoption(
        "--chaos-seed",
        metavar="N",
        type=int,
        default=None,
        help="seed of the forced thread switches (printed in every run), to replay a failure",
    )
    group.addoption(
        "--no-chaos", action="store_true", default=False, help="run student code without forced thread switches"
    )
    group.addoption(
        "--start-method",
        choices=START_METHODS,
        default=None,
        help="multiprocessing start method for the process topics (default: the platform's)",
    )
    group.addoption(
        "--conclab-channel",
        metavar="FD",
        type=int,
        default=None,
        help="read from FD where to send each test's result, and how to sign it (what `conclab grade` passes)",
    )
    group.addoption(
        "--conclab-guard",
        metavar="TOPICS",
        default=None,
        help="run the code of these topics (comma-separated, or all) under the guard (what `conclab grade` passes); refusals go to --conclab-guard-log",
    )
    group.addoption("--conclab-guard-log", metavar="FILE", default=None, help=argparse.SUPPRESS)
    group.addoption(  # the machinery's own tests only: never with --conclab-guard, which grading passes
        "--conclab-unchecked", action="store_true", default=False, help=argparse.SUPPRESS
    )
    group.addoption(
        "--conclab-report",
        metavar="FILE",
        default=None,
        help="write each test's result to FILE as the run goes (what `conclab grade` reads)",
    )


class Run:
    """What one pytest run of graders or public tests keeps from its start to its end."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.root = manifest.course_root()
        impl = config.getoption("impl")
        self.impl = (Path(impl) if impl else self.root / "exercises").resolve()
        if not self.impl.is_dir():
            raise pytest.UsageError(f"--impl {impl}: no such folder")
        self.seed = config.getoption("chaos_seed") or chaos.new_seed()
        self.chaos_on = not config.getoption("no_chaos")
        self.modules: dict[str, object] = {}  # the topics' modules imported so far, by name
        self.import_errors: dict[str, str] = {}  # why a topic's module could not be imported
        self.exitstatus = 0
        self.session_threads: set[int | None] = set()
        self.session_children: set[int] = set()
        self.writer: report.Writer | None = None
        self.pending: dict[str, dict] = {}  # nodeid -> the result so far of a test that has not ended
        self.integrity_sent = False  # the report has been told that the tools were replaced
        self.tools: integrity.Tools | None = None  # taken before the first student module is imported
        self.cheat = ""  # why every test fails, once student code has replaced a grader's tool
        # the static pre-check of each module, unless the machinery's own tests turn it off
        self.prechecked = not config.getoption("conclab_unchecked") or bool(config.getoption("conclab_guard"))

    def topic_dir(self, topic: manifest.Topic) -> Path:
        return self.impl / topic.id

    @property
    def student_code_ran(self) -> bool:
        return bool(self.modules or self.import_errors)


run: Run | None = None

# Python 3.11 keeps the AST constructor's recursion depth per interpreter, not per thread, and
# formatting a traceback parses source lines (for the ^^^ markers): two threads formatting at
# once can fail with "SystemError: AST constructor recursion depth mismatch" and crash pytest.
# pytest formats an uncaught thread exception in the thread that raised it, while the main
# thread may be formatting a failed test: both take this lock.
formatting = threading.Lock()


def topic_of(item: pytest.Item) -> manifest.Topic | None:
    """The topic a test belongs to (None for a test outside the topics' folders)."""
    return manifest.topic_of_path(item.path)


def is_public_test(item: pytest.Item) -> bool:
    """Whether a test is one of the public tests the student runs (exercises/NN_name/)."""
    return Path(item.path).resolve().parent.parent == (manifest.course_root() / "exercises").resolve()


def configure(config: pytest.Config) -> Run:
    global run
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    run = Run(config)
    _put_on_path([str(run.topic_dir(t)) for t in manifest.topics()])
    # Python 3.12+ warns on every fork from a process with threads; here the threads are the
    # graders' own (bounded calls, timers), so the warning says nothing about student code.
    config.addinivalue_line("filterwarnings", r"ignore:This process \(pid=\d+\) is multi-threaded:DeprecationWarning")
    report_path, channel = config.getoption("conclab_report"), config.getoption("conclab_channel")
    if (report_path or channel is not None) and not hasattr(config, "workerinput"):
        if getattr(config.option, "numprocesses", None):
            raise pytest.UsageError("--conclab-report needs a run without -n: each topic is graded in a run of its own")
        # before any student code is imported: the channel's key is read and its pipe closed
        run.writer = report.open_channel(channel) if channel is not None else report.Writer(report_path)
    _note_interrupts()
    guarded = config.getoption("conclab_guard")
    if guarded:
        chosen = manifest.topics() if guarded == "all" else [manifest.find(key) for key in guarded.split(",")]
        guard.install(
            guard.Rules(
                modules=tuple(
                    guard.Module(
                        t.module, t.filename, t.imports, str(run.topic_dir(t).resolve()), manifest.importable(t)
                    )
                    for t in chosen
                ),
                scratch=str(Path(tempfile.gettempdir()).resolve()),
                log=config.getoption("conclab_guard_log") or os.devnull,
            )
        )
    method = config.getoption("start_method")
    if method:
        if method not in multiprocessing.get_all_start_methods():
            raise pytest.UsageError(f"--start-method {method} is not available on this platform")
        multiprocessing.set_start_method(method, force=True)
    return run


def _note_interrupts() -> None:
    """A real Ctrl-C still stops the run: note it, so that its KeyboardInterrupt is not taken
    for one raised by student code (which fails the test instead)."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return

    def interrupted(signum, frame):
        state.interrupted = True
        signal.default_int_handler(signum, frame)

    signal.signal(signal.SIGINT, interrupted)


def _put_on_path(dirs: list[str]) -> None:
    """The topic folders at the end of sys.path: a folder (or module) of the submission named
    like the package, or like a module Python has already found elsewhere, never takes its
    place.  Child processes get the same order (spawn and forkserver copy sys.path; PYTHONPATH
    puts the package first).  Topic folders of another implementation (inherited from a run
    this one is part of) go."""
    topic_ids = {t.id for t in manifest.topics()}
    sys.path[:] = [p for p in sys.path if Path(p).name not in topic_ids] + dirs
    package_home = str(Path(__file__).resolve().parents[2])
    inherited = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p).name not in topic_ids]
    os.environ["PYTHONPATH"] = os.pathsep.join([package_home, *dirs, *inherited])
    diagnose.set_student_dirs(dirs)


def header() -> list[str]:
    if run is None:
        return []
    switches = (
        f"forced thread switches, seed {run.seed} (replay with --chaos-seed {run.seed})"
        if run.chaos_on
        else "no forced thread switches"
    )
    method = multiprocessing.get_start_method(allow_none=True) or multiprocessing.get_context().get_start_method()
    return [f"conclab: implementation {run.impl}; {switches}; start method {method}"]
