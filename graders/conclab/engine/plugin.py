"""The pytest plugin behind every grader and public test (`-p conclab.engine.plugin`): a
table of pytest's hooks, each handing over to the engine module that does the work.

- session:  the options, the implementation under test on sys.path, the run's state
- modules:  one fixture per topic, named after its module, which imports it with a bound
- budget:   each test's time budget, a readable failure when it runs out, the backstops
- calls:    around each test's call: exceptions in threads, forced switches, the tools' check
- teardown: after each test, what it left running is stopped
- results:  failures explained for the student, each test's result in the results file
- ending:   the end of the run, whatever student code left behind
"""

from __future__ import annotations

import pytest

from conclab.core import machine

from . import budget, calls, ending, modules, results, session, teardown


def pytest_addoption(parser: pytest.Parser) -> None:
    session.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    session.configure(config)
    config.pluginmanager.register(modules.fixtures(), "conclab-modules")


def pytest_report_header(config: pytest.Config) -> list[str]:
    return session.header()


def pytest_sessionstart(session: pytest.Session) -> None:
    ending.started()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    budget.apply(items)


def pytest_collection_finish(session: pytest.Session) -> None:
    results.collected(session.items)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    """A grader shares the machine with other graders; a test marked `alone` has it to itself.
    A public test (exercises/) that is not `alone` takes no lock: it never waits for grading."""
    topic = session.topic_of(item)
    alone = item.get_closest_marker("alone") is not None
    if topic is None or (not alone and session.is_public_test(item)):
        return (yield)
    with machine.share(alone=alone):
        return (yield)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if session.topic_of(item) is not None:
        teardown.remember(item)


@pytest.hookimpl(wrapper=True, specname="pytest_runtest_setup")
def pytest_runtest_setup_outcomes(item: pytest.Item):
    if session.topic_of(item) is None:
        return (yield)
    with calls.outcomes_fail():
        return (yield)


@pytest.hookimpl(wrapper=True, specname="pytest_runtest_teardown")
def pytest_runtest_teardown_outcomes(item: pytest.Item):
    if session.topic_of(item) is None:
        return (yield)
    with calls.outcomes_fail():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    topic = session.topic_of(item)
    if topic is None:
        return (yield)
    with calls.watched(item, topic):
        return (yield)


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    teardown.stop_leftovers(item)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    with session.formatting:  # the failure's traceback is formatted in here
        test_report = yield
    if call.when == "call" and test_report.failed and session.topic_of(item) is not None:
        results.explain_failure(item, call, test_report)
    if test_report.failed or test_report.skipped:
        test_report.user_properties.append(("conclab_message", results.student_message(call, test_report)))
    return test_report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    results.record(report)


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_set_timer(item: pytest.Item, settings) -> bool:
    budget.start(item, settings.timeout)
    return True


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_cancel_timer(item: pytest.Item) -> bool:
    budget.cancel(item)
    return True


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    ending.finished(exitstatus)


@pytest.hookimpl(tryfirst=True, specname="pytest_unconfigure")
def pytest_unconfigure_arm_watchdog(config: pytest.Config) -> None:
    ending.arm_exit_watchdog()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    ending.end_anyway(config)
