"""Every bug a topic lists is caught: a solution with that one bug fails the graders
named in tests/mutants/NN_name.toml."""

from __future__ import annotations

import pytest

from conclab import manifest
from conclab.dev import check as devcheck

ROOT = manifest.course_root()
TOPICS = manifest.topics()

MUTANTS = devcheck.load_mutants(ROOT)


def test_mutant_is_caught(mutant, tmp_path, no_process_left):
    ok, why, run = devcheck.check_mutant(mutant, tmp_path)
    assert ok, f"{mutant.bug}: {why}\n{run.output[-4000:]}"
    budget = devcheck.mutant_budget(mutant)
    assert run.test_time < budget, f"caught, but only after {run.test_time:.1f} s"
    assert not run.left, run.left_text()


def test_every_topic_has_mutants():
    covered = {m.topic.id for m in MUTANTS}
    assert covered == {t.id for t in TOPICS}


def test_a_mutant_whose_text_is_gone_is_reported(tmp_path):
    mutant = devcheck.Mutant(MUTANTS[0].topic, "ghost", "nothing", [devcheck.Edit("no such text", "x")])
    with pytest.raises(ValueError, match="occurs 0 times"):
        devcheck.make_mutant(mutant, tmp_path)
    ok, why, run = devcheck.check_mutant(mutant, tmp_path)
    assert not ok and "occurs 0 times" in why
