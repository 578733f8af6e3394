"""Graders for topic 05: events.py.  Event must behave like threading.Event; Ticker must
tick on time, stop at once and use no CPU while it waits."""

import ast
import threading
from time import monotonic

import pytest

from conclab.testing import BLOCK, EventLog, blocks, call, expect, lines_run_while, shown, start


def _uses_threading_event(module) -> bool:
    tree = ast.parse(open(module.__file__, encoding="utf-8").read())
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "Event":
            return any(isinstance(n, ast.Attribute) and n.attr == "Event" for n in ast.walk(node)) or any(
                isinstance(b, ast.Attribute) for b in node.bases
            )
    return False


def outcome(job):
    return f"raised {shown(job.error)}" if job.error else f"returned {shown(job.value)}"


# ------------------------------------------------------------------ Event


def test_a_new_event_is_clear_and_wait_times_out_with_false(events):
    expect(not _uses_threading_event(events), "class Event uses threading.Event: build it from threading.Condition.")
    event = events.Event()
    expect(event.is_set() is False, "A new Event should not be set.")
    job = start(event.wait, 0.3, what="wait(0.3) on an Event that is not set")
    job.finished()
    expect(
        job.error is None and job.value is False,
        f"wait(0.3) should return False when the time runs out; it {outcome(job)}.",
    )
    expect(job.duration >= 0.28, f"wait(0.3) returned after {job.duration:.2f} s, before its timeout.")


def test_wait_on_a_set_event_returns_true_at_once(events):
    event = events.Event()
    call(event.set)
    expect(event.is_set() is True, "After set(), is_set() should be True.")
    expect(call(event.wait, within=1) is True, "wait() on a set Event should return True at once.")
    expect(call(event.wait, 5, within=1) is True, "wait(5) on a set Event should return True at once.")


def test_set_wakes_every_waiter(events):
    event = events.Event()
    waiters = [start(event.wait, what=f"wait() #{i}") for i in range(5)]
    threading.Event().wait(BLOCK)
    expect(all(w.running for w in waiters), "wait() returned before the Event was set.")
    call(event.set)
    deadline = monotonic() + 3
    for waiter in waiters:
        waiter.wait(max(0.0, deadline - monotonic()))
    woken = [not w.running and w.value is True for w in waiters]
    expect(
        any(woken),
        "set() woke none of the 5 threads waiting in wait(): set the flag and call notify_all() on the "
        "condition, under its lock.",
    )
    expect(
        all(woken),
        f"set() should wake all 5 waiting threads, but {woken.count(True)} returned True. "
        "Use notify_all(): notify() wakes only one.",
    )


def test_wait_with_timeout_returns_true_when_set_in_time(events):
    event = events.Event()
    job = blocks(event.wait, 5, what="wait(5)")
    call(event.set)
    expect(
        job.wait(3),
        "wait(5) was still waiting 3 s after set(): set() must wake the waiting threads (notify_all()), "
        "not leave them asleep until their timeout.",
    )
    expect(job.result() is True, f"wait(5) should return True when the Event is set in time; it {outcome(job)}.")


def test_clear_resets_the_flag(events):
    event = events.Event()
    call(event.set)
    call(event.clear)
    expect(event.is_set() is False, "After clear(), is_set() should be False.")
    expect(call(event.wait, 0.1) is False, "After clear(), wait(0.1) should time out and return False.")


# Without forced switches: set() and clear() must run back to back, before the waiter runs.
@pytest.mark.no_chaos
def test_a_waiter_woken_by_set_returns_true_even_if_cleared_at_once(events):
    for _ in range(5):
        event = events.Event()
        waiter = blocks(event.wait, 1, what="wait(1)")

        def pulse():
            event.set()
            event.clear()

        call(pulse, what="set() then clear()")
        waiter.finished()
        if waiter.value is not True:
            break
    if waiter.value is not True:
        probe_event = events.Event()
        probe = blocks(probe_event.wait, 2, what="wait(2)")
        call(probe_event.set)
        expect(
            probe.wait(1.5) and probe.value is True,
            "set() does not wake a thread waiting in wait(): a wait(2) was still waiting 1.5 s after set(). "
            "set() must notify_all() the condition the waiters wait on.",
        )
    expect(
        waiter.value is True,
        f"A thread waiting in wait(1) was woken by set(), but wait() returned "
        f"{shown(waiter.value)} because clear() came before it ran. Like threading.Event.wait, return True when the wait "
        "was ended by set(): use the result of Condition.wait(timeout), not the flag read afterwards.",
    )


def test_waiting_threads_use_no_cpu(events):
    event = events.Event()
    waiters = [start(event.wait, what="wait()"), start(event.wait, 30, what="wait(30)")]
    ran = lines_run_while(1.0)
    expect(all(w.running for w in waiters), "The two waiters should still be waiting.")
    expect(
        ran < 5,
        f"While two threads waited in wait() for 1 s, {ran} lines of events.py ran: they should sleep "
        "in Condition.wait() until set() notifies them, not loop or poll.",
    )
    call(event.set)


# ------------------------------------------------------------------ Ticker


def test_ticker_ticks_every_interval_and_stops_within_a_fraction_of_it(events):
    for attempt in range(3):
        calls = EventLog()
        ticker = events.Ticker(1.0, lambda: calls.add(monotonic()))
        expect(isinstance(ticker, threading.Thread), "Ticker must be a subclass of threading.Thread.")
        started = monotonic()
        ticker.start()
        ticks = 1 if attempt else 2  # the first attempt checks the ticking as well
        deadline = monotonic() + 5
        while len(calls) < ticks and monotonic() < deadline:
            threading.Event().wait(0.01)
        expect(
            len(calls) >= ticks,
            f"A Ticker(1.0) ticked {len(calls)} time(s) in 5 s"
            + (
                ", and then its thread ended: run() should go on calling callback() every interval until stop()."
                if not ticker.is_alive()
                else f"; it should have ticked {ticks} time(s), once every interval."
            ),
        )
        first = calls.events[0] - started
        expect(
            first >= 0.9, f"The first tick came {first:.2f} s after start(); it should come one interval (1.0 s) after."
        )
        if ticks == 2:
            second = calls.events[1] - started
            expect(
                second >= 1.9,
                f"The second tick came {second:.2f} s after start(); it should come two intervals (2.0 s) after: "
                "wait a whole interval again after each tick.",
            )
        expect(
            len(calls) == ticks, f"After {ticks} interval(s) there should be {ticks} tick(s), there were {len(calls)}."
        )
        threading.Event().wait(0.3)
        job = start(ticker.stop, what="stop()")
        job.finished(within=3)
        expect(job.error is None, f"stop() raised {shown(job.error)}.")
        next_tick_in = calls.events[-1] + 1.0 - job.started_at
        expect(
            job.duration < 0.35,
            f"stop() took {job.duration:.2f} s, though the next tick was {next_tick_in:.2f} s "
            "away. stop() must wake the ticker at once: wait on an Event with the interval as timeout, instead of "
            "time.sleep.",
        )
        if next_tick_in >= 0.5:
            break
        # stop() was called late (a busy machine), so close to the next tick that a ticker asleep until then
        # would also have returned quickly: this proved nothing; try again with a new ticker.
    count = len(calls)
    threading.Event().wait(1.2)
    expect(len(calls) == count, "The callback was called again after stop().")


def test_stop_is_prompt_for_a_long_interval_and_an_idle_ticker_uses_no_cpu(events):
    calls = EventLog()
    ticker = events.Ticker(60.0, lambda: calls.add("tick"))
    ticker.start()
    ran = lines_run_while(0.5)
    expect(
        ran < 5,
        f"A Ticker waiting for its 60 s interval ran {ran} lines of events.py in 0.5 s: it should sleep "
        "in a wait, not loop or poll.",
    )
    job = start(ticker.stop, what="stop() of a Ticker(60)")
    job.finished(within=3)
    expect(
        job.duration < 1.0,
        f"stop() of a Ticker with a 60 s interval took {job.duration:.2f} s; it should return "
        "at once, not wait for the end of the interval.",
    )
    expect(not ticker.is_alive() and len(calls) == 0, "After stop() the ticker should have ended without a tick.")
    second = start(ticker.stop, what="a second stop()")
    second.finished(within=3)
    expect(
        second.error is None, f"Calling stop() a second time should do nothing, but it raised {shown(second.error)}."
    )


def test_stop_waits_for_a_running_callback(events):
    inside, gate = threading.Event(), threading.Event()
    calls = EventLog()

    def slow_callback():
        calls.add("tick")
        inside.set()
        gate.wait(5)

    ticker = events.Ticker(0.2, slow_callback)
    ticker.start()
    expect(inside.wait(3), "The Ticker(0.2) never called its callback.")
    stopping = blocks(ticker.stop, what="stop() while the callback is running")
    gate.set()
    stopping.result()
    expect(not ticker.is_alive(), "The Ticker thread is still alive after stop() returned: stop() should join it.")
    threading.Event().wait(0.5)
    expect(calls.events == ["tick"], f"The callback ran {len(calls)} times; after stop() it must not run again.")
