"""The topic's module under test: one fixture per topic, named after its module
(`def test_x(bank): bank.BankAccount()`), which imports it with a bound and turns an import
error into a plain message."""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path

import pytest

from conclab import manifest
from conclab.core import diagnose, guard, precheck
from conclab.kit import vocabulary as testing

from . import session


def _import_failure(topic: manifest.Topic, path: Path, exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return (
            f"{topic.filename} has a syntax error at line {exc.lineno}: {exc.msg}\n"
            f"    {(exc.text or '').strip()}\nFix it so that Python can read the file."
        )
    where = diagnose.raised_at(exc.__traceback__)
    where = f" (at {where})" if where else ""
    return (
        f"Importing {topic.filename} failed with {diagnose.exception_text(exc)}{where}.\n"
        f"The file must import cleanly before anything in it can be tested."
    )


def load(topic: manifest.Topic):
    """The topic's module from the implementation under test, imported once per run."""
    run = session.run
    assert run is not None
    if topic.module in run.modules:
        return run.modules[topic.module]
    if topic.module in run.import_errors:
        testing.fail(run.import_errors[topic.module])
    path = run.topic_dir(topic) / topic.filename
    if not path.is_file():
        testing.fail(f"There is no {topic.filename} in {path.parent}: the tests need {path}.")
    source = path.read_text(encoding="utf-8", errors="replace") if run.prechecked else ""
    problems = precheck.check_source(source, topic)
    if problems:
        if guard.installed() is not None:
            guard.note(f"{topic.filename} {problems[0]} (the static pre-check)")
        run.import_errors[topic.module] = precheck.message(problems, topic)
        testing.fail(run.import_errors[topic.module])
    loaded = sys.modules.get(topic.module)
    if loaded is not None and Path(getattr(loaded, "__file__", "") or "").resolve() != path.resolve():
        del sys.modules[topic.module]  # a module of the same name from elsewhere: not the one to test
    job = testing.Job(importlib.import_module, (topic.module,), what=f"import {topic.module}")
    if not job.wait(topic.budget / 2):
        message = (
            f"Importing {topic.filename} did not finish within {topic.budget / 2:g} s: code at the top "
            f"level of the file waits or loops.\n{testing.stuck_report([job])}"
        )
        run.import_errors[topic.module] = message
        testing.fail(message)
    if job.error is not None:
        if isinstance(job.error, (KeyboardInterrupt, SystemExit)):
            message = f"Importing {topic.filename} raised {type(job.error).__name__}: the module must not exit."
        else:
            message = _import_failure(topic, path, job.error)
        run.import_errors[topic.module] = message
        testing.fail(message)
    module = job.value
    if Path(module.__file__).resolve() != path.resolve():
        testing.fail(f"`import {topic.module}` found {module.__file__} instead of {path}.")
    run.modules[topic.module] = module
    return module


def _make_fixture(topic: manifest.Topic):
    def fixture():
        return load(topic)

    fixture.__name__ = topic.module
    fixture.__doc__ = f"The module {topic.filename} of topic {topic.id}, from the implementation under test."
    return pytest.fixture(name=topic.module)(fixture)


def fixtures() -> object:
    """A plugin object holding one fixture per topic, named after the topic's module."""
    holder = types.ModuleType("conclab_module_fixtures")
    for topic in manifest.topics():
        setattr(holder, topic.module, _make_fixture(topic))
    return holder
