"""Public tests for topic 05. Run them with:  pytest exercises/05_event

The hidden graders also time your Ticker (first tick, stop() in the middle of an
interval) and check that waiting threads run no code while they wait.
"""

import threading

from conclab.testing import EventLog, blocks, call, expect, start, wait_until


def test_set_and_wait(events):
    event = events.Event()
    expect(not event.is_set(), "A new Event is not set.")
    waiting = blocks(event.wait, what="wait() on an Event that is not set")
    call(event.set)
    expect(waiting.result() is True, "wait() should return True once the Event is set.")


def test_wait_timeout(events):
    event = events.Event()
    expect(call(event.wait, 0.2) is False, "wait(0.2) on an Event that is never set should return False.")


def test_clear(events):
    event = events.Event()
    call(event.set)
    call(event.clear)
    expect(not event.is_set(), "After clear() the Event is not set.")


def test_ticker(events):
    ticks = EventLog()
    ticker = events.Ticker(0.1, lambda: ticks.add(1))
    ticker.start()
    wait_until(lambda: len(ticks) >= 3, what="three ticks of a Ticker(0.1)")
    stopping = start(ticker.stop, what="stop()")
    stopping.result()
    expect(not ticker.is_alive(), "After stop() the Ticker thread has ended.")


def test_ticker_stops_at_once(events):
    ticker = events.Ticker(30, lambda: None)
    ticker.start()
    threading.Event().wait(0.1)
    stopping = start(ticker.stop, what="stop() of a Ticker(30)")
    expect(
        stopping.wait(3) and stopping.duration < 1,
        "stop() of a Ticker(30) did not return at once: a ticker asleep in time.sleep(30) cannot be woken. "
        "Wait on an Event with the interval as timeout, so that stop() can wake it.",
    )
    stopping.result()
