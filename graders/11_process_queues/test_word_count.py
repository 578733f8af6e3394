"""Graders for topic 11: word_count.py."""

from collections import Counter

import pytest

from conclab.testing import ChildWork, call, expect, process_ids, started_since

pytestmark = pytest.mark.no_chaos  # child processes: forced thread switches do not apply

TEXTS = ["The cat sat on the mat", "the CAT and the hat", "", "Mat   mat\tmat\nMAT", "on on on"]


def expected(texts):
    total = Counter()
    for text in texts:
        total.update(text.lower().split())
    return dict(total)


def test_word_count_counts_every_word_once_with_any_number_of_workers(word_count):
    for workers in (1, 2, 4):
        before = process_ids()
        result = call(
            word_count.word_count, TEXTS * 3, workers, within=5, what=f"word_count(15 texts, workers={workers})"
        )
        expect(
            result == expected(TEXTS * 3),
            f"word_count(..., workers={workers}) returned {result}, expected "
            f"{expected(TEXTS * 3)}. Words are lower-cased and split on white space.",
        )
        expect(call(word_count.word_count, [], workers, within=5) == {}, "word_count([]) should return {}.")
        left = started_since(before)
        expect(
            not left,
            f"word_count returned while {len(left)} worker process(es) had not exited and been "
            "joined. Send one sentinel per worker, and join every worker.",
        )


def test_large_results_do_not_deadlock(word_count):
    texts = [" ".join(f"w{t}x{i}" for i in range(20_000)) for t in range(4)]  # 4 results of ~300 kB each
    result = call(word_count.word_count, texts, 2, within=6, what="word_count(4 texts of 20000 distinct words)")
    expect(
        len(result) == 80_000 and set(result.values()) == {1},
        f"Expected 80000 distinct words counted once each, got {len(result)}.",
    )


def test_the_work_is_shared_by_the_workers(word_count):
    texts = [" ".join(f"word{i % 5000}" for i in range(40_000)) for _ in range(24)]
    with ChildWork() as work:
        result = call(word_count.word_count, texts, 2, within=8, what="word_count(24 long texts, workers=2)")
    expect(result == expected(texts), "word_count gave wrong counts for 24 long texts.")
    busy = work.pids(share=0.15)
    expect(
        len(busy) >= 2,
        f"With workers=2, both worker processes should count; {len(busy)} did the work. "
        "Every worker takes texts from the same task queue until it gets a sentinel.",
    )
