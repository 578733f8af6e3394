"""After each topic's test: stop what it left running (threads that are still busy, calls
that never returned, child processes, pools), so that it cannot slow down or break the
next tests."""

from __future__ import annotations

import threading

import pytest

from conclab.core import cleanup
from conclab.kit import state
from conclab.kit import vocabulary as testing

_before_key = pytest.StashKey[tuple[set, set]]()


def remember(item: pytest.Item) -> None:
    """Before the test: the threads and child processes that are not its own."""
    item.stash[_before_key] = (state.remember_test_threads(), set(cleanup.descendants()))


def stop_leftovers(item: pytest.Item) -> None:
    before = item.stash.get(_before_key, None)
    if before is None:
        return
    threads_before, children_before = before
    left = [
        t
        for t in threading.enumerate()
        if t not in threads_before and t.is_alive() and not t.name.startswith(cleanup.HELPER_PREFIX)
    ]
    left += [
        job.thread
        for job in list(state.running_jobs)  # this test's calls that never returned
        if job.thread not in threads_before and job.thread.is_alive()
    ]
    still = testing.join_within(left, 0.5)
    if still:
        stopped = [thread for thread in cleanup.busy(still) if cleanup.inject(thread)]
        testing.join_within(stopped, 2.0)  # the next test starts without them (as far as they let it)

    def new_children() -> list:
        return [p for pid, p in cleanup.descendants().items() if pid not in children_before]

    procs = new_children()
    if procs and cleanup.close_pools():  # a pool whose workers are killed can never be finalized
        procs = new_children()
    if procs:
        cleanup.kill_processes(procs)
