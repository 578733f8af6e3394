"""Public tests for topic 11. Run them with:  pytest exercises/11_process_queues

The hidden graders also use more workers, check that each of them counts, and that every
text gives one partial count.
"""

from conclab.testing import call, expect, start


def test_word_count(word_count):
    result = call(word_count.word_count, ["a b a", "B c"], 2, within=5)
    expect(result == {"a": 2, "b": 2, "c": 1}, f"word_count(['a b a', 'B c']) should be {{'a': 2, 'b': 2, 'c': 1}}, "
           f"got {result}.")


def test_word_count_with_more_workers_than_texts(word_count):
    result = call(word_count.word_count, ["x y"], 3, within=5)
    expect(result == {"x": 1, "y": 1}, f"word_count(['x y'], workers=3) should be {{'x': 1, 'y': 1}}, got {result}.")


def test_large_results(word_count):
    texts = [" ".join(f"w{t}x{i}" for i in range(12_000)) for t in range(2)]  # two results of ~180 kB
    job = start(word_count.word_count, texts, 2, what="word_count(2 texts of 12000 distinct words)")
    expect(
        job.wait(4),
        "word_count(2 texts of 12000 distinct words) did not return within 4 s: a worker cannot exit while its "
        "result still waits to go into the pipe (which holds about 64 kB), so read every result before you join.",
    )
    expect(len(job.result()) == 24_000, f"Expected 24000 distinct words, got {len(job.result())}.")
