"""The course is complete and consistent: the manifest, the three folders of every topic,
and the same public names and signatures in each stub and its solution."""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys

import pytest

from conclab import manifest

ROOT = manifest.course_root()
TOPICS = manifest.topics()


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def public_api(module) -> dict[str, str]:
    """Public names defined in the module, with their signatures (methods included)."""
    api = {}
    for name, value in vars(module).items():
        if name.startswith("_") or getattr(value, "__module__", None) != module.__name__:
            continue
        if inspect.isclass(value):
            api[name] = "class(" + ", ".join(b.__name__ for b in value.__bases__) + ")"
            for attr, member in vars(value).items():
                if attr.startswith("_") and attr not in ("__init__", "__len__", "__enter__", "__exit__"):
                    continue
                if inspect.isfunction(member):
                    api[f"{name}.{attr}"] = str(inspect.signature(member))
                elif isinstance(member, property):
                    api[f"{name}.{attr}"] = "property"
        elif inspect.isfunction(value):
            api[name] = str(inspect.signature(value))
    return api


def test_manifest_lists_the_topic_folders_and_nothing_else():
    for kind in ("exercises", "solutions", "graders"):
        on_disk = sorted(p.name for p in (ROOT / kind).iterdir() if p.is_dir() and re.match(r"\d\d_", p.name))
        assert on_disk == [t.id for t in TOPICS], f"{kind}/ holds {on_disk}"


def test_module_names_are_unique_and_shadow_nothing():
    modules = [t.module for t in TOPICS]
    assert len(set(modules)) == len(modules)
    assert not set(modules) & set(sys.stdlib_module_names)


def test_topic_has_every_part(topic):
    assert (ROOT / "exercises" / topic.id / topic.filename).is_file()
    assert (ROOT / "solutions" / topic.id / topic.filename).is_file()
    lesson = ROOT / "exercises" / topic.id / "README.md"
    assert lesson.is_file()
    assert f"pytest exercises/{topic.id}" in lesson.read_text(encoding="utf-8"), "the lesson says how to run the tests"
    assert list((ROOT / "exercises" / topic.id).glob("test_*.py")), "public tests"
    assert list((ROOT / "graders" / topic.id).glob("test_*.py")), "graders"
    assert len(topic.hints) >= 3, "a few progressive hints"


def test_stub_and_solution_have_the_same_public_api(topic):
    stub = public_api(load(ROOT / "exercises" / topic.id / topic.filename, f"stub_{topic.module}"))
    solution = public_api(load(ROOT / "solutions" / topic.id / topic.filename, f"solution_{topic.module}"))
    assert stub == solution


def test_stub_marks_the_work_to_do(topic):
    source = (ROOT / "exercises" / topic.id / topic.filename).read_text(encoding="utf-8")
    assert "# TODO" in source
    assert "TODO" not in (ROOT / "solutions" / topic.id / topic.filename).read_text(encoding="utf-8")


def test_find_accepts_number_id_and_name():
    first = TOPICS[0]
    for key in (first.number, str(int(first.number)), first.id, first.name, f"exercises/{first.id}/"):
        assert manifest.find(key) == first
    with pytest.raises(manifest.ManifestError, match="no topic"):
        manifest.find("99")


def test_a_broken_manifest_is_refused(tmp_path):
    bad = tmp_path / "topics.toml"
    bad.write_text('[[topic]]\nid = "1_x"\ntitle = "t"\nmodule = "threading"\npoints = 10\nbudget = 5\nhints = []\n')
    with pytest.raises(manifest.ManifestError, match="NN_name"):
        manifest.load(bad)
    bad.write_text('[[topic]]\nid = "01_x"\ntitle = "t"\nmodule = "threading"\npoints = 10\nbudget = 5\nhints = []\n')
    with pytest.raises(manifest.ManifestError, match="usable module name"):
        manifest.load(bad)
    bad.write_text('[[topic]]\nid = "01_x"\ntitle = "t"\n')
    with pytest.raises(manifest.ManifestError, match="missing"):
        manifest.load(bad)


GOOD_TOPIC = '[[topic]]\nid = "01_x"\ntitle = "t"\nmodule = "x"\npoints = 10\nbudget = 5\nhints = ["h"]\n'


@pytest.mark.parametrize(
    "change, complaint",
    [
        (("budget = 5", "budgets = 5"), "line 14: topic '01_x' has the unknown key 'budgets'"),
        (("points = 10", 'points = "10"'), "line 13: points of topic '01_x' must be a whole number, not '10'"),
        (("points = 10", "points = true"), "line 13: points of topic '01_x' must be a whole number, not True"),
        (("budget = 5", "budget = 0"), "line 14: budget of topic '01_x' must be more than 0 seconds"),
        (('hints = ["h"]', "hints = [1]"), "line 15: hints of topic '01_x' must be a list of strings"),
        (
            ('hints = ["h"]', 'hints = ["h"]\nprocesses = "yes"'),
            "line 16: processes of topic '01_x' must be true or false",
        ),
    ],
)
def test_the_manifest_names_the_line_to_fix(tmp_path, change, complaint):
    """A broken topic after a good one: the message names the line in the file to fix."""
    good = GOOD_TOPIC.replace("01_x", "00_w").replace('module = "x"', 'module = "w"')
    bad = tmp_path / "topics.toml"
    bad.write_text(good + "\n" + GOOD_TOPIC.replace(*change, 1))
    with pytest.raises(manifest.ManifestError) as refused:
        manifest.load(bad)
    assert complaint in str(refused.value), str(refused.value)
    bad.write_text("version = 2\n" + good)
    with pytest.raises(manifest.ManifestError, match="unknown key 'version'"):
        manifest.load(bad)


def test_the_readme_table_lists_every_topic():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\d\d_\w+)` \| `(\w+)\.py` \|", readme, flags=re.M)
    assert rows == [(t.id, t.module) for t in TOPICS]


def test_every_expected_exception_is_told_in_the_students_words(topic):
    """pytest.raises would say only `DID NOT RAISE ValueError`: graders and public tests use
    `raises(E, promise)`, whose failure says what was promised and what happened instead."""
    for folder in ("graders", "exercises"):
        for path in sorted((ROOT / folder / topic.id).glob("*.py")):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                assert not re.search(r"\.raises\(|from pytest import .*\braises\b", line), (
                    f"{path.relative_to(ROOT)} line {number} uses pytest.raises: use conclab.testing.raises(E, promise)"
                )
