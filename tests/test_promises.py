"""Every promise of a topic (its lesson's task list, its stub's docstrings) is in the topic's
promise table (tests/mutants/NN_name.toml), tried by a grader and broken by a mutant that
grader catches; every grader tries a promise; every lesson's headline bug fails a public test."""

from __future__ import annotations

import pytest

from conclab import manifest
from conclab.dev import check as devcheck
from conclab.dev import promises

ROOT = manifest.course_root()
MUTANTS = devcheck.load_mutants(ROOT)

#: Topics whose table is still being written: each leaves this set with its table.
NOT_YET: set[str] = set()

TABLED = [t for t in manifest.topics() if t.id not in NOT_YET]


@pytest.fixture(params=TABLED or [None], ids=lambda t: t.id if t else "none-yet")
def table(request):
    if request.param is None:
        pytest.skip("no topic has its promise table yet")
    return promises.load(request.param, ROOT)


def test_not_yet_names_only_topics_of_the_course():
    assert NOT_YET <= {t.id for t in manifest.topics()}


def test_every_clause_of_the_lesson_and_stub_is_a_promise_or_an_aside(table):
    missing = promises.uncovered(table, ROOT)
    assert not missing, "no promise of the table holds these words:\n" + "\n".join(
        f"  {where}: {clause}" for where, clause in missing
    )


def test_every_promise_quotes_the_lesson_or_the_stub(table):
    assert table.promises, "the table has no [[promise]]"
    assert not promises.said_nowhere(table, ROOT)


def test_promise_ids_are_unique(table):
    ids = [p.id for p in table.promises]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def test_every_promise_is_tried_by_graders_that_exist(table):
    graders = promises.grader_names(table.topic, ROOT)
    for promise in table.promises:
        assert promise.graders, f"{promise.id}: no grader tries it"
        unknown = set(promise.graders) - graders
        assert not unknown, f"{promise.id}: no grader named {sorted(unknown)}"


def test_every_grader_tries_a_promise(table):
    tried = {g for p in table.promises for g in p.graders}
    assert not promises.grader_names(table.topic, ROOT) - tried


def test_every_promise_is_broken_by_a_mutant_its_graders_catch(table):
    mutants = [m for m in MUTANTS if m.topic == table.topic]
    ids = {p.id for p in table.promises}
    for mutant in mutants:
        assert mutant.breaks, f"mutant {mutant.name} breaks no promise (`breaks`)"
        assert set(mutant.breaks) <= ids, f"mutant {mutant.name} breaks unknown promises"
        tried = {g for p in table.promises if p.id in mutant.breaks for g in p.graders}
        assert tried & set(mutant.catches), f"mutant {mutant.name}: none of its graders tries what it breaks"
    broken = {b for m in mutants for b in m.breaks}
    assert not ids - broken, f"no mutant breaks {sorted(ids - broken)}"


def test_the_lessons_headline_bug_fails_a_public_test(table):
    assert any(m.public for m in MUTANTS if m.topic == table.topic), (
        "no mutant names the public tests that fail on the bug the lesson is about (`public`)"
    )
