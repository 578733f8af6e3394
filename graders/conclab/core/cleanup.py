"""Stopping what student code leaves behind: threads that never end and child processes.

Python cannot kill a thread, but a thread that is busy running Python code can be made
to raise an exception of our choosing (PyThreadState_SetAsyncExc); that ends busy loops.
A thread blocked for ever on a lock cannot be reached at all, so at the end of the run
the plugin leaves through os._exit instead of waiting for it, after the reports are
written.  Child processes are found through psutil and killed, the whole tree; once a run has
ended, whatever it started and left behind is found by the mark in its environment.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time

import psutil

#: The name of every thread the graders start begins with this, so that the clean-up and the
#: reports tell them from the student's threads.
HELPER_PREFIX = "grader:"


class StoppedByGrader(BaseException):
    """Raised inside a thread the graders had to stop; never reported as the student's error."""


class OverBudget(BaseException):
    """Raised inside the test's thread when its time budget has run out (wherever it is then,
    the student's code included): the graders' own stop, however it reaches a test."""


def _cpu_times() -> dict[int, float]:
    try:
        return {t.id: t.user_time + t.system_time for t in psutil.Process().threads()}
    except (psutil.Error, NotImplementedError):
        return {}


def busy(threads: list[threading.Thread], within: float = 0.5, cpu: float = 0.01) -> list[threading.Thread]:
    """The threads among these that use CPU (a loop that never ends), not those blocked:
    those that use `cpu` seconds of it within `within` seconds.  Watched for a while, since
    on a busy machine a spinning thread can wait a tenth of a second or more for a core."""
    before = _cpu_times()
    found: list[threading.Thread] = []
    ends = time.monotonic() + within
    while len(found) < len(threads) and time.monotonic() < ends:
        time.sleep(0.05)
        now = _cpu_times()
        found += [
            t
            for t in threads
            if t not in found
            and t.native_id in before
            and t.native_id in now
            and now[t.native_id] - before[t.native_id] >= cpu
        ]
    return found


def inject(thread: threading.Thread, exc_type: type[BaseException] = StoppedByGrader) -> bool:
    """Ask `thread` to raise exc_type the next time it runs Python code.

    Only for a thread that is running Python code: on CPython 3.11 and older, a pending
    exception for a thread blocked in C slows every other thread down until it is raised."""
    if thread.ident is None or not thread.is_alive() or not hasattr(ctypes, "pythonapi"):
        return False
    done = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(exc_type))
    return done == 1


def infrastructure_pids() -> set[int]:
    """multiprocessing's own helper processes: they end by themselves with their parent."""
    pids = set()
    tracker = getattr(sys.modules.get("multiprocessing.resource_tracker"), "_resource_tracker", None)
    if getattr(tracker, "_pid", None):
        pids.add(tracker._pid)
    server = getattr(sys.modules.get("multiprocessing.forkserver"), "_forkserver", None)
    if getattr(server, "_forkserver_pid", None):
        pids.add(server._forkserver_pid)
    return pids


def descendants() -> dict[int, psutil.Process]:
    """Every live process below this one, except multiprocessing's helpers."""
    try:
        children = psutil.Process().children(recursive=True)
    except psutil.Error:
        return {}
    skip = infrastructure_pids()
    return {child.pid: child for child in children if child.pid not in skip and running(child)}


def process_ids() -> set[int]:
    """The pids of every process below this one now (zombies included)."""
    try:
        return {p.pid for p in psutil.Process().children(recursive=True)}
    except psutil.Error:
        return set()


def unjoined_children() -> set[int]:
    """PIDs of the multiprocessing.Process objects started here and not joined yet.

    Under fork a child that is never joined stays a zombie, which started_since() sees;
    under forkserver and spawn the forkserver (or nobody) reaps it, and only
    multiprocessing's own list of children (left by join()) still tells."""
    from multiprocessing import process

    return {child.pid for child in list(process._children) if child.pid is not None}


def started_since(before: set[int]) -> list[psutil.Process]:
    """Processes below this one that were not in `before`, zombies included, except
    multiprocessing's own helpers (the forkserver and the resource tracker)."""
    skip = before | infrastructure_pids()
    try:
        return [p for p in psutil.Process().children(recursive=True) if p.pid not in skip]
    except psutil.Error:
        return []


def running_since(before: set[int]) -> list[psutil.Process]:
    """The processes started since `before` that are still running (a zombie has ended)."""
    alive = []
    for proc in started_since(before):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.Error:
            pass
    return alive


def close_pools(timeout: float = 5.0) -> int:
    """Terminate the process pools that are still running, the way Pool.terminate() does
    it, before their workers are killed: a pool whose worker was killed while holding the
    pool's task lock can never be finalized, and Python would wait for it at exit (or in
    whichever later test happens to collect it).  Pools thrown away but not yet collected
    are finalized first.  Returns how many pools were terminated."""
    import gc
    from multiprocessing import pool as mp_pool

    gc.collect()
    running = [
        obj for obj in gc.get_objects() if isinstance(obj, mp_pool.Pool) and getattr(obj, "_state", None) == mp_pool.RUN
    ]
    for pool in running:
        stopper = threading.Thread(target=pool.terminate, name=HELPER_PREFIX + "pool-terminate", daemon=True)
        stopper.start()
        stopper.join(timeout)
    return len(running)


def kill_processes(procs: list[psutil.Process], timeout: float = 2.0) -> list[psutil.Process]:
    """Kill each process and whatever it started; reap them; return those that were alive."""
    everyone = []
    for proc in procs:
        try:
            everyone.extend(proc.children(recursive=True))
        except psutil.Error:
            pass
        everyone.append(proc)
    killed = []
    for proc in everyone:
        try:
            proc.kill()
            killed.append(proc)
        except psutil.Error:
            continue
    wait_gone(killed, timeout)
    # Let multiprocessing forget the children it started, so nothing joins them at exit.
    multiprocessing.active_children()
    return killed


def listening_ports(proc: psutil.Process) -> list[str]:
    """The addresses a process listens on (host:port), if any can be read."""
    connections = getattr(proc, "net_connections", None) or proc.connections  # psutil < 6 has only the latter
    try:
        return [f"{c.laddr.ip}:{c.laddr.port}" for c in connections(kind="inet") if c.status == psutil.CONN_LISTEN]
    except (psutil.Error, OSError):
        return []


def describe_process(proc: psutil.Process) -> str:
    """One line about a process: `process PID: its command line (listening on HOST:PORT)`."""
    try:
        cmd = " ".join(proc.cmdline())[:100]
    except psutil.Error:
        cmd = "?"
    ports = listening_ports(proc)
    listening = f" (listening on {', '.join(ports)})" if ports else ""
    return f"process {proc.pid}: {cmd}{listening}"


def describe_processes(procs: list[psutil.Process]) -> str:
    return "\n".join(f"  - {describe_process(proc)}" for proc in procs)


def exit_on_sigterm() -> None:
    """A plain `kill` (or a CI step's time limit) ends the command the way Ctrl-C does, so
    that it stops the runs it started instead of leaving them behind."""
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def running(proc: psutil.Process) -> bool:
    """Alive and not a zombie (a zombie has ended; only its exit status is left to collect)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until these processes have ended, at most `timeout` seconds; return those still
    running.  (psutil.wait_procs waits out its whole timeout for a process that is not our
    child, even one that ended at once.)"""
    deadline = time.monotonic() + timeout
    while True:
        psutil.wait_procs(procs, timeout=0)  # collects the exit status of those that are our children
        procs = [p for p in procs if running(p)]
        if not procs or time.monotonic() >= deadline:
            return procs
        time.sleep(0.01)


def stuck_non_daemon_threads(baseline: set[int | None]) -> list[threading.Thread]:
    return [
        t
        for t in threading.enumerate()
        if t.is_alive() and not t.daemon and t is not threading.main_thread() and t.ident not in baseline
    ]


#: Every child run (run_in_own_group) gets a mark of its own in this environment variable,
#: after those of the runs it is part of; whatever it starts inherits it.
RUN_MARK = "CONCLAB_RUN_MARK"


def with_mark(env: dict[str, str], mark: str) -> dict[str, str]:
    outer = env.get(RUN_MARK, "")
    return {**env, RUN_MARK: f"{outer},{mark}" if outer else mark}


def marked(mark: str) -> list[psutil.Process]:
    """Every process that has `mark` in its environment: what a run started, even a process
    that left the run's process group and was adopted by init once its parent ended (a
    grandchild of a daemon-style double fork), which no parent-child walk can find."""
    found = []
    for proc in psutil.process_iter():
        try:
            if mark in proc.environ().get(RUN_MARK, "").split(","):
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def hard_exit(status: int) -> None:
    """Leave now: flush what was printed, skip waiting for threads that never end."""
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()  # type: ignore[union-attr]
        except Exception:  # noqa: BLE001
            pass
    os._exit(status)
