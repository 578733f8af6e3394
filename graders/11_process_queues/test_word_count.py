"""Graders for topic 11: word_count.py."""

import os
import queue
from collections import Counter
from collections.abc import Mapping
from contextlib import contextmanager
from multiprocessing import process as mp_process
from multiprocessing import queues as mp_queues

import pytest

from conclab.testing import (
    ChildWork,
    call,
    expect,
    fail,
    process_ids,
    shown,
    start,
    started_since,
    stuck_report,
    unjoined_children,
)

pytestmark = pytest.mark.no_chaos  # child processes: forced thread switches do not apply

TEXTS = ["The cat sat on the mat", "the CAT and the hat", "", "Mat   mat\tmat\nMAT", "on on on"]


def expected(texts):
    total = Counter()
    for text in texts:
        total.update(text.lower().split())
    return dict(total)


# ------------------------------------------------------------------ what the parent did


class Traffic:
    """What the parent process did with multiprocessing queues and processes."""

    def __init__(self) -> None:
        self.got: list = []  # items the parent took from a queue
        self.put: list = []  # items the parent put on a queue
        self.empty_said_yes = 0  # empty() calls that answered True (or qsize() calls that answered 0)
        self.gets_timed_out = 0  # get() calls that gave up (queue.Empty)
        self.started = 0  # processes the parent started

    @property
    def observed(self) -> bool:
        """Whether the queues were ones this watch sees (not, say, a Manager's)."""
        return bool(self.got or self.put)

    def partial_counts(self) -> list:
        return [item for item in self.got if _holds_a_count(item)]


def _holds_a_count(item) -> bool:
    if isinstance(item, Mapping):
        return True
    if isinstance(item, (tuple, list)) and item:
        if any(_holds_a_count(part) for part in item):
            return True
        return all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in item)
    return False


@contextmanager
def traffic():
    """Watch the parent's queue calls and process starts during the block (children, which
    may have inherited the watch under fork, are not counted)."""
    seen, parent, originals = Traffic(), os.getpid(), []

    def watch(cls, name, after):
        original = cls.__dict__[name]

        def watched(self, *args, **kwargs):
            if os.getpid() != parent:
                return original(self, *args, **kwargs)
            try:
                value = original(self, *args, **kwargs)
            except queue.Empty:
                if name == "get":
                    seen.gets_timed_out += 1
                raise
            after(args, value)
            return value

        originals.append((cls, name, original))
        setattr(cls, name, watched)

    def got(args, value):
        seen.got.append(value)

    def put(args, value):
        if args:
            seen.put.append(args[0])

    def empty(args, value):
        seen.empty_said_yes += bool(value)

    def qsize(args, value):
        seen.empty_said_yes += value == 0

    def started(args, value):
        seen.started += 1

    for cls in (mp_queues.Queue, mp_queues.SimpleQueue):
        watch(cls, "get", got)
        watch(cls, "put", put)
        watch(cls, "empty", empty)
    watch(mp_queues.JoinableQueue, "put", put)
    watch(mp_queues.Queue, "qsize", qsize)
    watch(mp_process.BaseProcess, "start", started)
    try:
        yield seen
    finally:
        for cls, name, original in reversed(originals):
            setattr(cls, name, original)


EMPTY_IS_A_SNAPSHOT = (
    "empty() is only a snapshot: a result a worker has put can still be on its way into the pipe, so the "
    "result queue looks empty before every result has arrived."
)
HOW_TO_READ_ALL = (
    "Read exactly one result per text (you know how many: len(texts)), or have each worker put a sentinel of its "
    "own on the result queue when it stops, and read until you have one from every worker."
)


def _why_results_were_lost(seen: Traffic, texts) -> str:
    """Why the parent stopped reading before it had every partial count ('' if it did not)."""
    taken = len(seen.partial_counts())
    if not seen.observed or taken >= len(texts):
        return ""
    why = f"The parent took {taken} of the {len(texts)} partial counts (one per text) from the result queue"
    if seen.empty_said_yes:
        why += f", and stopped reading when empty() said the queue was empty. {EMPTY_IS_A_SNAPSHOT}"
    elif seen.gets_timed_out:
        why += ", and stopped reading when a get() with a timeout ran out: a worker can take longer than that."
    else:
        why += "."
    return f"{why} {HOW_TO_READ_ALL}"


def _what_is_wrong(result, texts, seen: Traffic, what: str) -> str:
    want = expected(texts)
    head = f"{what} returned {shown(result)}, expected {shown(want)}."
    if not isinstance(result, dict):
        return f"{head} It should return a dict: word -> count."
    lost = _why_results_were_lost(seen, texts)
    if lost:
        return f"{head} {lost}"
    kept_case = Counter(word for text in texts for word in text.split())
    if result == dict(kept_case):
        return f"{head} Words are lower-cased first: 'The' and 'the' are one word."
    extra = sorted(set(result) - set(want))
    if extra:
        return f"{head} Words that are not in the texts: {extra[:5]}. Split on white space: text.lower().split()."
    low = [w for w in want if result.get(w, 0) < want[w]]
    high = [w for w in want if result.get(w, 0) > want[w]]
    if high and not low:
        word = high[0]
        return (
            f"{head} Some words are counted too often ({word!r}: {result[word]} instead of {want[word]}): each text "
            "is counted by one worker, once, and the parent merges each partial count once."
        )
    if low and not high and set(result) == set(want):
        word = low[0]
        return (
            f"{head} Every word is there, but some counts are too low ({word!r}: {result[word]} instead of "
            f"{want[word]}): add the partial counts up (Counter.update, or +=); dict.update writes each word's "
            "count over the one before." + ("" if seen.observed else " Or were partial counts lost? " + HOW_TO_READ_ALL)
        )
    if low and not high:
        return f"{head} Some words are missing: partial counts were lost. {HOW_TO_READ_ALL}"
    return f"{head} Words are lower-cased and split on white space: text.lower().split()."


def _stuck(job, texts, workers: int, seen: Traffic, within: float) -> str:
    """Why word_count did not return, as far as the parent's queue calls tell."""
    message = f"{job.what} did not return within {within:g} s."
    sentinels = len(seen.put) - len(texts)
    if seen.observed and 0 <= sentinels < workers:
        message += (
            f" It put {sentinels} item(s) besides the {len(texts)} texts on the task queue, for {workers} workers: "
            "each worker stops after taking one sentinel, so the others wait in get() for ever, and so does "
            "join(). Put one sentinel per worker."
        )
    elif seen.observed and len(seen.partial_counts()) < len(texts):
        message += f" The parent had taken {len(seen.partial_counts())} of the {len(texts)} results when it got stuck"
        if seen.empty_said_yes:
            message += (
                ": it stopped reading when empty() said the result queue was empty, and waited for the workers. "
                + EMPTY_IS_A_SNAPSHOT
            )
        else:
            message += "."
        message += (
            " A worker cannot exit until its results have gone into the pipe, and a pipe holds only so much "
            "(often 64 kB): read every result (one per text) before you join the workers."
        )
    return f"{message}\n{stuck_report([job])}"


def run(word_count, texts, workers, within, what, seen):
    """word_count(texts, workers) (workers=None: left out), with a message saying why if it hangs."""
    args = (texts,) if workers is None else (texts, workers)
    job = start(word_count.word_count, *args, what=what)
    if not job.wait(within):
        fail(_stuck(job, texts, workers or 2, seen, within))
    return job.result()


# ------------------------------------------------------------------ graders


def test_word_count_counts_every_word_once_with_any_number_of_workers(word_count):
    texts = TEXTS * 3
    for workers in (1, 2, 4):
        before, unjoined_before = process_ids(), unjoined_children()
        what = f"word_count(15 texts, workers={workers})"
        with traffic() as seen:
            result = run(word_count, texts, workers, 5, what, seen)
        expect(result == expected(texts), _what_is_wrong(result, texts, seen, what))
        expect(
            not seen.started or seen.started >= workers,
            f"{what} started {seen.started} process(es): it should start `workers` worker processes.",
        )
        expect(call(word_count.word_count, [], workers, within=5) == {}, "word_count([]) should return {}.")
        left = started_since(before)
        expect(
            not left and not unjoined_children() - unjoined_before,
            f"word_count returned while {len(left) or 'some'} worker process(es) had not exited and been "
            "joined. Send one sentinel per worker, and join every worker.",
        )


def test_two_workers_by_default(word_count):
    texts = TEXTS * 2
    with traffic() as seen:
        result = run(word_count, texts, None, 5, "word_count(10 texts)", seen)
    expect(result == expected(texts), _what_is_wrong(result, texts, seen, "word_count(10 texts)"))
    expect(
        not seen.started or seen.started >= 2,
        f"word_count(texts) without `workers` started {seen.started} worker process(es); the default is workers=2.",
    )


def test_each_text_gives_one_partial_count(word_count):
    texts = [f"alpha beta gamma{i % 3} Alpha" for i in range(12)]
    what = "word_count(12 texts, workers=3)"
    with traffic() as seen:
        result = run(word_count, texts, 3, 5, what, seen)
    expect(result == expected(texts), _what_is_wrong(result, texts, seen, what))
    if not seen.observed:
        return  # queues this watch does not see (a Manager's, say): nothing more to judge
    taken = len(seen.partial_counts())
    expect(
        taken == len(texts),
        f"For 12 texts the parent took {taken} partial counts from the result queue: a worker should put one "
        "partial count per text (the counts of that text's words) as soon as it has counted it, not one for all "
        "its texts at the end.",
    )


def test_large_results_do_not_deadlock(word_count):
    texts = [" ".join(f"w{t}x{i}" for i in range(20_000)) for t in range(4)]  # 4 results of ~300 kB each
    what = "word_count(4 texts of 20000 distinct words)"
    with traffic() as seen:
        result = run(word_count, texts, 2, 6, what, seen)
    expect(
        len(result) == 80_000,
        f"{what} should count 80000 distinct words, but returned {len(result)}. " + _why_results_were_lost(seen, texts),
    )
    expect(
        set(result.values()) == {1},
        f"Each of the 80000 words occurs once, but {what} counted some {max(result.values())} times: each text is "
        "counted by one worker, once, and the parent merges each partial count once.",
    )


def test_the_work_is_shared_by_the_workers(word_count):
    texts = [" ".join(f"word{i % 5000}" for i in range(40_000)) for _ in range(24)]
    what = "word_count(24 long texts, workers=2)"
    with ChildWork() as work, traffic() as seen:
        result = run(word_count, texts, 2, 8, what, seen)
    expect(result == expected(texts), _what_is_wrong(result, texts, seen, what))
    busy = work.pids(share=0.15)
    expect(
        len(busy) >= 2,
        f"With workers=2, both worker processes should count; {len(busy)} did the work. "
        "Every worker takes texts from the same task queue until it gets a sentinel.",
    )
