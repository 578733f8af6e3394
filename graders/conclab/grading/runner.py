"""Child runs: a command (a pytest run, a `conclab grade`) in a process group of its own,
with its output in a file, ended with everything it started, however it ends.

- `become_reaper()` makes this process the reaper of everything its runs start (Linux);
- `run_in_own_group(command, ...)` runs one and returns its exit status and output;
- `kill_tree(proc)` ends one that is still running, with all it started;
- `end_strays()` ends what a run left behind that is no longer below it (Linux);
- `child_runs(jobs, name)` runs several side by side and stops them all at Ctrl-C or SIGTERM;
- `child_env(root)` is the environment they get.

What a run starts is found three ways, so that none of them alone has to hold: below the run
(its children and theirs), in its process group, and by the mark in its environment.  A
process that leaves all three (a double fork into a session of its own, with the environment
replaced) is, on Linux, still ours: this process is a child subreaper (prctl), so every
orphan below it is handed to it rather than to init, and after each run every child of ours
that is not a run still going is ended, with all it started.  macOS and Windows have no
subreaper; there the first three ways are all there is (SECURITY.md says so).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import psutil

from conclab.core import cleanup

PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h

_live: set[int] = set()  # the runs started here that are still going (their pids)
_live_lock = threading.Lock()  # held while a run starts, so end_strays never takes one for a stray
_reaper = False


def become_reaper() -> bool:
    """Make this process a child subreaper (Linux): orphans below it come to it, not to init.
    Only for a grading command's own process: every child of it that is not a run of ours is
    then a stray that end_strays() ends.  Returns whether this process is one now."""
    global _reaper
    if not _reaper and sys.platform.startswith("linux"):
        import ctypes

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            _reaper = libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
        except (OSError, AttributeError):
            _reaper = False
    return _reaper


def end_strays(rounds: int = 50) -> None:
    """Kill every child of this reaper that is not a run still going (an orphan handed to us),
    with everything it started, and collect their exit statuses; again until none is left (a
    stray may fork while it is being killed)."""
    if not _reaper:
        return
    for _ in range(rounds):
        with _live_lock:
            try:
                strays = [child for child in psutil.Process().children() if child.pid not in _live]
            except psutil.Error:
                return
        if not strays:
            return
        cleanup.kill_processes(strays)
        for stray in strays:  # an orphan that had already ended is a zombie of ours until collected
            try:
                os.waitpid(stray.pid, os.WNOHANG)
            except ChildProcessError:
                pass


def child_env(root: Path) -> dict[str, str]:
    """The environment of a pytest run started from here: ours, without the variables of a
    pytest run we may be part of, with the course folder it is to grade with."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["CONCLAB_ROOT"] = str(root)
    return env


def run_in_own_group(
    command: list[str],
    cwd: Path,
    env: dict[str, str],
    timeout: float,
    running: set | None = None,
    left: list[str] | None = None,
    pass_fds: tuple[int, ...] = (),
    on_start=None,
) -> tuple[int, str]:
    """Run a command in a process group of its own, with its output in a file (a process it
    leaves behind cannot hold a pipe open and keep us waiting); once it has ended, or its
    time is up, kill whatever is left of it.  `running`, if given, holds the process while
    it runs, for a caller that may have to stop everything at once (kill_tree).  `left`, if
    given, gets a line for each process the command started that was still running after it
    had ended by itself (as a student running pytest would find it), before it is killed.
    `pass_fds` are file descriptors the command inherits; `on_start`, if given, is called
    once it has started (to close the parent's copies of them)."""
    mark = uuid.uuid4().hex
    env = cleanup.with_mark(env, mark)
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as out:
        # A process group, not a session: Linux shares the CPUs fairly between sessions
        # (autogroup), so a run in a session of its own would get one CPU's worth against
        # a busy session beside it, and no speed-up could show.
        group = {"preexec_fn": os.setpgrp} if os.name == "posix" else {}
        try:
            with _live_lock:
                proc = subprocess.Popen(
                    command,
                    cwd=cwd,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    pass_fds=pass_fds,
                    **group,
                )
                _live.add(proc.pid)
        finally:
            if on_start is not None:
                on_start()
        if running is not None:
            running.add(proc)
        returncode = None  # still running (Ctrl-C while waiting)
        try:
            returncode = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            returncode = -1
        finally:
            if left is not None and returncode not in (None, -1):
                # multiprocessing's helpers end by themselves soon after their parent: 2 s for them
                outlived = cleanup.wait_gone([p for p in cleanup.marked(mark) if p.pid != proc.pid], 2.0)
                left.extend(cleanup.describe_process(p) for p in outlived)
            kill_tree(proc)
            cleanup.kill_processes(cleanup.marked(mark))  # what escaped the group and the tree
            with _live_lock:
                _live.discard(proc.pid)
            end_strays()  # what escaped the mark too
            if running is not None:
                running.discard(proc)
        out.seek(0)
        output = out.read()
    if returncode == -1:
        output = f"pytest did not finish within {timeout} s\n{output}"
    return returncode, output


def kill_tree(proc: subprocess.Popen) -> None:
    """Kill a process started by run_in_own_group, everything it started (even in process
    groups of their own, found while it is still alive) and whatever is left in its group."""
    tree = []
    if proc.poll() is None:
        try:
            tree = psutil.Process(proc.pid).children(recursive=True)
        except psutil.Error:
            tree = []
        for child in tree:
            try:
                child.kill()
            except psutil.Error:
                pass
    group = []
    if os.name == "posix":
        group = [p for p in psutil.process_iter() if _group_of(p.pid) == proc.pid]
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    elif proc.poll() is None:
        proc.kill()
    proc.wait()
    cleanup.wait_gone(tree + group, timeout=5)  # gone, with any port they listened on, when we return


def _group_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


@contextmanager
def child_runs(jobs: int, name: str) -> Iterator[tuple[ThreadPoolExecutor, set]]:
    """Threads that start child runs (with run_in_own_group, passing it the set), `jobs` at a
    time.  If the block ends with an exception (Ctrl-C, or SIGTERM from a CI step out of
    time), every run still going is killed with all it started, and runs not started yet
    are dropped."""
    running: set = set()
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix=name)
    try:
        yield pool, running
    except BaseException:
        for proc in list(running):
            kill_tree(proc)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        end_strays()
