"""The one import graders and public tests need: the vocabulary of conclab.kit, in one place.

Calls and threads (kit/vocabulary.py):
    call(f, *args)          run f in a helper thread; its result, or a clear failure if it hangs
    start(f, *args) -> Job  the same, without waiting: job.result(), job.running, job.error
    blocks(f, *args)        check that f is still waiting after a moment; returns its Job
    join_all(threads)       join many threads, each with a bound; name the stuck ones
    join_within(threads, s) the same without failing: returns the threads still running
    run_threads(n, f)       f(0) .. f(n-1) in n threads started together; their results
    EventLog                a thread-safe record of what happened, in order
    Overlap                 how many threads were inside a block at once
    Rendezvous(n)           a meeting point that only opens when n threads are there together
    InFlight(n)             a fake fetch(url) that proves n calls waited at once, and never more
    Timeline                who ran when, drawn as a bar per thread or process for a failure message
    no_new_threads(what)    fail if a block leaves a thread of its own running
    wait_until(pred)        poll a condition of the test's own, with a bound
    lines_run_while(secs)   how many lines of student code ran in `secs` (0 when all wait)
    uses_module(mod, name)  whether the student's file imports a module
    drain(queue, n)         up to n items from a queue, without waiting for ever
    no_pool_left(what)      fail if a block leaves a process pool (or any child process) running
    fail(msg), expect(c, msg)  fail with a message for the student, without a traceback dump
    raises(E, promise)      the block must raise E; else fail with the promise and what happened
    time_left()             seconds left of the running test's time budget (None: no budget)

Processes and speed-ups (kit/parallel.py, core/cleanup.py):
    ChildWork, expect_speedup, judge_speedup, speedup, needs_cpus, usable_cpus, busy, idle,
    gil_enabled; process_ids, started_since, running_since, unjoined_children
Locks whose deadlocks are explained (kit/locks.py): LockTable, TrackedLock
Programs that talk over connections (kit/messaging.py): ServerProgram, ClientProcesses, ...
Functions for worker processes (kit/workers.py): `workers`, importable under every start method
A child that gets stuck but still ends when signalled (kit/stuck.py): StuckChild

Nothing here waits without a bound, and every failure says what was expected, what
happened and where the student's threads are.
"""

from .core.cleanup import process_ids, running_since, started_since, unjoined_children
from .core.cpus import usable_cpus
from .kit import workers
from .kit.locks import DeadlockBroken, LockTable, TrackedLock
from .kit.messaging import (
    HOST,
    ClientProcesses,
    ServerProgram,
    free_port,
    new_authkey,
    port_is_free,
    put_and_get,
    put_range,
    request_and_vanish,
    server_thread,
)
from .kit.parallel import (
    ChildWork,
    CPUShare,
    NotMeasured,
    Speedup,
    Verdict,
    busy,
    expect_speedup,
    gil_enabled,
    idle,
    judge_speedup,
    needs_cpus,
    speedup,
)
from .kit.stuck import StuckChild
from .kit.vocabulary import (
    BLOCK,
    WAIT,
    EventLog,
    InFlight,
    Job,
    Overlap,
    Rendezvous,
    Timeline,
    blocks,
    call,
    drain,
    expect,
    fail,
    join_all,
    join_within,
    lines_run_while,
    no_new_threads,
    no_pool_left,
    raises,
    run_threads,
    shown,
    start,
    stuck_report,
    time_left,
    uses_module,
    wait_until,
)

__all__ = [
    "BLOCK",
    "HOST",
    "WAIT",
    "ChildWork",
    "shown",
    "raises",
    "CPUShare",
    "ClientProcesses",
    "DeadlockBroken",
    "EventLog",
    "InFlight",
    "Job",
    "LockTable",
    "Overlap",
    "Rendezvous",
    "ServerProgram",
    "Speedup",
    "StuckChild",
    "Timeline",
    "TrackedLock",
    "NotMeasured",
    "Verdict",
    "blocks",
    "busy",
    "call",
    "drain",
    "expect",
    "expect_speedup",
    "fail",
    "free_port",
    "gil_enabled",
    "idle",
    "join_all",
    "join_within",
    "judge_speedup",
    "lines_run_while",
    "needs_cpus",
    "new_authkey",
    "no_new_threads",
    "no_pool_left",
    "port_is_free",
    "process_ids",
    "put_and_get",
    "put_range",
    "request_and_vanish",
    "run_threads",
    "server_thread",
    "speedup",
    "start",
    "started_since",
    "running_since",
    "stuck_report",
    "time_left",
    "unjoined_children",
    "usable_cpus",
    "uses_module",
    "wait_until",
    "workers",
]
