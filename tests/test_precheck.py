"""The static pre-check (core/precheck.py) by itself: what looks an attribute up by a name held
in a string is refused, with the line; honest strings and formatting stay allowed."""

from __future__ import annotations

import pytest

from conclab import manifest
from conclab.core import precheck

TOPIC = manifest.find("04")

REFUSED = {
    "a format field taken apart": (
        "import string, sys\nx = string.Formatter().get_field('0.x', (sys,), {})\n",
        "uses Formatter",
    ),
    "Formatter imported by name": ("from string import Formatter\n", "uses Formatter"),
    "an annotation evaluated": ("import typing\ndef f(x: int): pass\ntyping.get_type_hints(f)\n", "get_type_hints"),
    "a string naming sys.modules": ("key = 'sys.modules'\n", "names .modules in a string"),
    "a format field naming globals": ("text = '{0.__globals__}'\n", "names .__globals__ in a string"),
    "an f-string naming a frame": ("x = 1\ntext = f'{x}.f_back'\n", "names .f_back in a string"),
    "__getattr__ called": ("import threading\nthreading.Thread.__getattr__\n", "uses .__getattr__"),
}
ALLOWED = {
    "plain words": "message = 'the modules were loaded; a frame of reference'\n",
    "formatting an attribute": "text = '{0.name} has {0.size} items'.format(object())\n",
    "an f-string": "name = 'x'\ntext = f'{name}: done'\n",
    "a method named __getattr__": "class P:\n    def __getattr__(self, name):\n        return name\n",
}


@pytest.mark.parametrize("source, says", REFUSED.values(), ids=REFUSED.keys())
def test_a_lookup_by_a_name_in_a_string_is_refused_with_its_line(source, says):
    problems = precheck.check_source(source, TOPIC)
    assert any(says in p.text for p in problems), problems
    assert all(p.line >= 1 for p in problems)


@pytest.mark.parametrize("source", ALLOWED.values(), ids=ALLOWED.keys())
def test_honest_strings_and_formatting_are_allowed(source):
    assert precheck.check_source(source, TOPIC) == []
