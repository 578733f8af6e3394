"""Every correct strategy passes: each variant in tests/variants/NN_name.toml (a solution
solved another way) passes its topic's graders and public tests."""

from __future__ import annotations

import pytest

from conclab import manifest
from conclab.dev import check as devcheck

VARIANTS = devcheck.load_variants(manifest.course_root())


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.id for v in VARIANTS])
def test_variant_passes(variant, tmp_path, no_process_left):
    ok, why, run = devcheck.check_variant(variant, tmp_path)
    assert ok, f"{variant.bug}: {why}\n{run.output[-4000:]}"
