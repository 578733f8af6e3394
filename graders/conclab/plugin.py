"""The pytest plugin behind every grader and public test (loaded with -p conclab.plugin).

- `--impl DIR` chooses the implementation: a folder of topic folders (default: exercises).
  Every topic folder goes on sys.path (and PYTHONPATH, for child processes), so a topic's
  module is imported by its plain name, `import bank`, in the tests and in any child.
- One fixture per topic, named after its module: `def test_x(bank): bank.BankAccount()`.
  It imports the module with a bound and turns an import error into a plain message.
- Time budgets: each test of a topic gets the topic's budget as its pytest-timeout value.
  When it runs out, the test fails with a picture of where every thread is; a backstop
  ends the run if even that cannot stop the test.
- Forced thread switches in student code (see chaos.py), seeded; `--chaos-seed` replays.
- Exceptions raised in threads that nobody caught fail the test that was running.
- Threads and processes a test leaves behind are stopped; at the end of the run, threads
  that cannot be stopped do not keep the run from ending with the right status.
"""

from __future__ import annotations

import atexit
import faulthandler
import importlib
import multiprocessing
import os
import signal
import sys
import threading
import types
from pathlib import Path

import pytest

from . import chaos as chaos_mod
from . import cleanup, diagnose, integrity, machine, manifest, report, testing

_BACKSTOP_EXIT = 3


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conclab", "concurrency-lab grading")
    group.addoption("--impl", metavar="DIR", default=None,
                    help="folder of topic folders to test (default: the course's exercises/)")
    group.addoption("--chaos-seed", metavar="N", type=int, default=None,
                    help="seed of the forced thread switches (printed in every run), to replay a failure")
    group.addoption("--no-chaos", action="store_true", default=False,
                    help="run student code without forced thread switches")
    group.addoption("--start-method", choices=("fork", "forkserver", "spawn"), default=None,
                    help="multiprocessing start method for the process topics (default: the platform's)")
    group.addoption("--conclab-report", metavar="FILE", default=None,
                    help="write each test's result to FILE as the run goes (what `conclab grade` reads)")


class _State:
    def __init__(self, config: pytest.Config):
        self.config = config
        self.root = manifest.course_root()
        impl = config.getoption("impl")
        self.impl = (Path(impl) if impl else self.root / "exercises").resolve()
        if not self.impl.is_dir():
            raise pytest.UsageError(f"--impl {impl}: no such folder")
        self.seed = config.getoption("chaos_seed") or chaos_mod.new_seed()
        self.chaos_on = not config.getoption("no_chaos")
        self.modules: dict[str, object] = {}
        self.import_errors: dict[str, str] = {}
        self.exitstatus = 0
        self.session_threads: set[int | None] = set()
        self.session_children: set[int] = set()
        self.writer: report.Writer | None = None
        self.pending: dict[str, dict] = {}  # nodeid -> the result so far of a test that has not ended
        self.written: dict[str, dict] = {}  # nodeid -> the result written to the report
        self.tools: integrity.Tools | None = None  # taken before the first student module is imported
        self.cheat = ""  # why every test fails, once student code has replaced a grader's tool

    def topic_dir(self, topic: manifest.Topic) -> Path:
        return self.impl / topic.id


_state: _State | None = None


def _topic_of(item: pytest.Item) -> manifest.Topic | None:
    return manifest.topic_of_path(item.path)


# ---------------------------------------------------------------- configuration

MARKERS = (
    "weight(n): this test's share of its topic's points (default 1)",
    "no_chaos: run without forced thread switches (timing and speed-up tests)",
    "chaos(rate): force a thread switch at this share of the opcodes of student code (default 1/50)",
    "alone: a timing-sensitive test that must not share the machine with other tests",
)


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    global _state
    _state = _State(config)
    dirs = [str(_state.topic_dir(t)) for t in manifest.topics()]
    sys.path[:0] = [d for d in dirs if d not in sys.path]
    os.environ["PYTHONPATH"] = os.pathsep.join(dirs + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    diagnose.set_student_dirs(dirs)
    # Python 3.12+ warns on every fork from a process with threads; here the threads are the
    # graders' own (bounded calls, timers), so the warning says nothing about student code.
    config.addinivalue_line("filterwarnings", r"ignore:This process \(pid=\d+\) is multi-threaded:DeprecationWarning")
    report_path = config.getoption("conclab_report")
    if report_path and not hasattr(config, "workerinput"):
        if getattr(config.option, "numprocesses", None):
            raise pytest.UsageError("--conclab-report needs a run without -n: each topic is graded in a run of its own")
        _state.writer = report.Writer(report_path)
    method = config.getoption("start_method")
    if method:
        if method not in multiprocessing.get_all_start_methods():
            raise pytest.UsageError(f"--start-method {method} is not available on this platform")
        multiprocessing.set_start_method(method, force=True)
    config.pluginmanager.register(_module_fixtures(), "conclab-modules")


def pytest_report_header(config: pytest.Config) -> list[str]:
    if _state is None:
        return []
    switches = (f"forced thread switches, seed {_state.seed} (replay with --chaos-seed {_state.seed})"
                if _state.chaos_on else "no forced thread switches")
    method = multiprocessing.get_start_method(allow_none=True) or multiprocessing.get_context().get_start_method()
    return [f"conclab: implementation {_state.impl}; {switches}; start method {method}"]


def pytest_sessionstart(session: pytest.Session) -> None:
    assert _state is not None
    testing._remember_session_threads()
    _state.session_threads = {t.ident for t in threading.enumerate()}
    _state.session_children = set(cleanup.descendants())
    threading.excepthook = _session_excepthook(threading.excepthook)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        topic = _topic_of(item)
        if topic is not None and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(topic.budget))


# ---------------------------------------------------------------- module fixtures

def _import_failure(topic: manifest.Topic, path: Path, exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return (f"{topic.filename} has a syntax error at line {exc.lineno}: {exc.msg}\n"
                f"    {(exc.text or '').strip()}\nFix it so that Python can read the file.")
    where = diagnose.raised_at(exc.__traceback__)
    where = f" (at {where})" if where else ""
    return (f"Importing {topic.filename} failed with {type(exc).__name__}: {exc}{where}.\n"
            f"The file must import cleanly before anything in it can be tested.")


def _load_module(topic: manifest.Topic):
    assert _state is not None
    if topic.module in _state.modules:
        return _state.modules[topic.module]
    if topic.module in _state.import_errors:
        testing.fail(_state.import_errors[topic.module])
    path = _state.topic_dir(topic) / topic.filename
    if not path.is_file():
        testing.fail(f"There is no {topic.filename} in {path.parent}: the tests need {path}.")
    loaded = sys.modules.get(topic.module)
    if loaded is not None and Path(getattr(loaded, "__file__", "") or "").resolve() != path.resolve():
        del sys.modules[topic.module]  # a module of the same name from elsewhere: not the one to test
    job = testing.Job(importlib.import_module, (topic.module,), what=f"import {topic.module}")
    if not job.wait(topic.budget / 2):
        message = (f"Importing {topic.filename} did not finish within {topic.budget / 2:g} s: code at the top "
                   f"level of the file waits or loops.\n{testing.stuck_report([job])}")
        _state.import_errors[topic.module] = message
        testing.fail(message)
    if job.error is not None:
        if isinstance(job.error, (KeyboardInterrupt, SystemExit)):
            message = f"Importing {topic.filename} raised {type(job.error).__name__}: the module must not exit."
        else:
            message = _import_failure(topic, path, job.error)
        _state.import_errors[topic.module] = message
        testing.fail(message)
    module = job.value
    if Path(module.__file__).resolve() != path.resolve():
        testing.fail(f"`import {topic.module}` found {module.__file__} instead of {path}.")
    _state.modules[topic.module] = module
    return module


def _make_fixture(topic: manifest.Topic):
    def fixture():
        return _load_module(topic)
    fixture.__name__ = topic.module
    fixture.__doc__ = f"The module {topic.filename} of topic {topic.id}, from the implementation under test."
    return pytest.fixture(name=topic.module)(fixture)


def _module_fixtures() -> object:
    """A plugin object holding one fixture per topic, named after the topic's module."""
    holder = types.ModuleType("conclab_module_fixtures")
    for topic in manifest.topics():
        setattr(holder, topic.module, _make_fixture(topic))
    return holder


# ---------------------------------------------------------------- running a test

def _format_thread_errors(errors: list[threading.ExceptHookArgs]) -> str:
    parts = []
    for args in errors:
        name = args.thread.name if args.thread is not None else "a thread"
        where = diagnose.raised_at(args.exc_traceback)
        place = f"\n      at {where}" if where else ""
        parts.append(f"  - thread {name!r} raised {args.exc_type.__name__}: {args.exc_value}{place}")
    return ("An exception was raised inside a thread and nobody caught it, so it would have been lost:\n"
            + "\n".join(parts))


# Python 3.11 keeps the AST constructor's recursion depth per interpreter, not per thread, and
# formatting a traceback parses source lines (for the ^^^ markers): two threads formatting at
# once can fail with "SystemError: AST constructor recursion depth mismatch" and crash pytest.
# pytest formats an uncaught thread exception in the thread that raised it, while the main
# thread may be formatting a failed test: both take this lock.
_formatting = threading.Lock()


def _session_excepthook(previous):
    def hook(args: threading.ExceptHookArgs) -> None:
        if issubclass(args.exc_type, cleanup.StoppedByGrader):
            return
        with _formatting:
            previous(args)
    return hook


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    """A topic's test shares the machine with other tests; one marked `alone` has it to itself."""
    if _topic_of(item) is None:
        return (yield)
    with machine.share(alone=item.get_closest_marker("alone") is not None):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    assert _state is not None
    topic = _topic_of(item)
    if topic is None:
        return (yield)
    errors: list[threading.ExceptHookArgs] = []
    item.stash[_thread_errors_key] = errors
    previous_hook = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if not issubclass(args.exc_type, cleanup.StoppedByGrader):
            errors.append(args)
        if issubclass(args.exc_type, NotImplementedError):
            testing.not_implemented.append(args.exc_value)  # type: ignore[arg-type]

    testing.not_implemented.clear()
    _check_tools(topic)  # once a tool has been replaced, no test is run for real
    chaos = None
    if item.get_closest_marker("no_chaos") is None:
        marker = item.get_closest_marker("chaos")
        rate = marker.kwargs.get("rate", chaos_mod.DEFAULT_RATE) if marker else chaos_mod.DEFAULT_RATE
        rate = rate if _state.chaos_on else 0.0
        chaos = chaos_mod.Chaos(f"{_state.seed}:{item.nodeid}", rate)
        item.stash[_chaos_key] = chaos
    testing.tracer = chaos
    threading.excepthook = hook
    if chaos:
        chaos.start()
    try:
        result = yield
    finally:
        if chaos:
            chaos.stop()
        testing.tracer = None
        threading.excepthook = previous_hook
        _check_tools(topic)
    if errors:
        testing.fail(_format_thread_errors(errors))
    return result


def _check_tools(topic: manifest.Topic) -> None:
    """Fail the test, and every test of the run, once student code has replaced a tool the
    graders measure with (integrity.py)."""
    assert _state is not None
    if not _state.cheat and _state.tools is not None:
        replaced = _state.tools.changed()
        if replaced:
            _state.cheat = integrity.message(replaced, topic.filename)
            _state.tools.restore()
    if _state.cheat:
        testing.fail(_state.cheat)


_thread_errors_key = pytest.StashKey[list]()
_chaos_key = pytest.StashKey[chaos_mod.Chaos]()
_before_key = pytest.StashKey[tuple[set, set]]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if _topic_of(item) is not None:
        item.stash[_before_key] = (testing._remember_test_threads(), set(cleanup.descendants()))


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    """Stop what the test left running, so it cannot slow down or break the next tests."""
    before = item.stash.get(_before_key, None)
    if before is None:
        return
    threads_before, children_before = before
    left = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()
            and not t.name.startswith(testing._HELPER_PREFIX)]
    left += [job.thread for job in list(testing.running_jobs)  # this test's calls that never returned
             if job.thread not in threads_before and job.thread.is_alive()]
    still = testing.join_within(left, 0.5)
    if still:
        stopped = [thread for thread in cleanup.busy(still) if cleanup.inject(thread)]
        testing.join_within(stopped, 2.0)  # the next test starts without them (as far as they let it)
    def new_children() -> list:
        return [p for pid, p in cleanup.descendants().items() if pid not in children_before]

    procs = new_children()
    if procs and cleanup.close_pools():  # a pool whose workers are killed can never be finalized
        procs = new_children()
    if procs:
        cleanup.kill_processes(procs)


def _not_written_yet(exc: BaseException) -> str:
    frame = diagnose.student_frame(exc.__traceback__)
    where = f" ({Path(frame.filename).name} line {frame.lineno})" if frame else ""
    name = str(exc) or "this part"
    return (f"{name} is not written yet: it raises NotImplementedError{where}.\n"
            f"Replace the TODO there with your code.")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    with _formatting:  # see _formatting: the failure's traceback is formatted in here
        test_report = yield
    if call.when == "call" and test_report.failed and _topic_of(item) is not None:
        _explain_failure(item, call, test_report)
    if test_report.failed or test_report.skipped:
        test_report.user_properties.append(("conclab_message", _student_message(call, test_report)))
    return test_report


def _explain_failure(item: pytest.Item, call: pytest.CallInfo, test_report: pytest.TestReport) -> None:
    if call.excinfo is not None and call.excinfo.errisinstance(NotImplementedError):
        test_report.longrepr = _not_written_yet(call.excinfo.value)
        return
    if testing.not_implemented:
        test_report.longrepr = _not_written_yet(testing.not_implemented[0])
        return
    errors = item.stash.get(_thread_errors_key, [])
    if errors and not (call.excinfo and "nobody caught it" in str(call.excinfo.value)):
        test_report.sections.append(("exceptions in threads", _format_thread_errors(errors)))
    chaos = item.stash.get(_chaos_key, None)
    if chaos is not None and chaos.switches and _state is not None:
        test_report.sections.append(("forced thread switches",
                                     f"{chaos.switches} forced thread switches, seed {_state.seed}: "
                                     f"replay with --chaos-seed {_state.seed}"))


def _student_message(call: pytest.CallInfo, test_report: pytest.TestReport) -> str:
    longrepr = test_report.longrepr
    if isinstance(longrepr, str):
        return longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (path, line, "Skipped: reason")
        return str(longrepr[2]).removeprefix("Skipped: ")
    return report.message_of(call.excinfo, test_report.longreprtext)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Fold each test's set-up, call and tear-down into one result for --conclab-report."""
    if _state is None or _state.writer is None:
        return
    entry = _state.pending.setdefault(report.nodeid, {"outcome": "passed", "duration": 0.0, "message": ""})
    entry["duration"] += report.duration
    message = dict(report.user_properties).get("conclab_message", "")
    if report.failed and entry["outcome"] != "failed":
        entry.update(outcome="failed", message=message)
    elif report.skipped and entry["outcome"] == "passed":
        entry.update(outcome="skipped", message=message)
    if report.when == "teardown":
        result = _state.written[report.nodeid] = _state.pending.pop(report.nodeid)
        _state.writer.test(report.nodeid, **result)
        if _state.cheat:
            _fail_what_passed()


def _fail_what_passed() -> None:
    """Once a test has found a replaced tool, the tests graded before it fail as well (a
    later line for a test replaces the earlier one in the report)."""
    assert _state is not None and _state.writer is not None
    for nodeid, result in _state.written.items():
        if result["message"] != _state.cheat:
            result.update(outcome="failed", message=_state.cheat)
            _state.writer.test(nodeid, **result)


def pytest_collection_finish(session: pytest.Session) -> None:
    if _state is not None:
        _state.tools = integrity.Tools()
    if _state is not None and _state.writer is not None:
        _state.writer.collected([{"nodeid": item.nodeid, "name": item.name, "weight": _weight(item)}
                                 for item in session.items])


def _weight(item: pytest.Item) -> float:
    marker = item.get_closest_marker("weight")
    return float(marker.args[0]) if marker and marker.args else 1.0


# ---------------------------------------------------------------- time budgets

def _timeout_message(budget: float, main_frame) -> str:
    lines = [f"This test took longer than its time budget of {budget:g} s and was stopped."]
    mine = diagnose.where(main_frame)
    if mine:
        lines.append(f"The test was waiting in your code at {mine[0]}.")
    lines.append(testing.stuck_report())
    return "\n".join(lines)


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_set_timer(item: pytest.Item, settings) -> bool:
    """Our own timer for pytest-timeout's per-test budget: a readable failure, then a backstop."""
    budget = settings.timeout
    if not budget or budget <= 0:
        return True
    test_thread = threading.current_thread()
    use_signal = hasattr(signal, "SIGALRM") and test_thread is threading.main_thread()
    timers: list[threading.Timer] = []

    if use_signal:
        def on_alarm(signum, frame):
            __tracebackhide__ = True
            testing.fail(_timeout_message(budget, frame))
        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, budget)
    else:
        class TestOverBudget(BaseException):
            pass
        TestOverBudget.__name__ = f"TestTookLongerThan{int(budget)}s"
        timer = threading.Timer(budget, cleanup.inject, (test_thread, TestOverBudget))
        timer.name, timer.daemon = testing._HELPER_PREFIX + "budget", True
        timers.append(timer)

    terminal = _terminal_fd(item.config)

    def backstop() -> None:
        threads = diagnose.all_threads_report()
        message = (f"\nconclab: {item.nodeid} is still running {grace:g} s after its time budget of {budget:g} s "
                   f"ran out and cannot be stopped; ending the run.\n{threads}\n")
        if _state is not None and _state.writer is not None:
            _state.writer.test(item.nodeid, "failed", budget + grace,
                               f"This test took longer than its time budget of {budget:g} s and could not be "
                               f"stopped, so the grading of this topic ended here.\n{threads}")
        _abandon_run(terminal, message, _BACKSTOP_EXIT)

    grace = max(10.0, budget)
    stop = threading.Timer(budget + grace, backstop)
    stop.name, stop.daemon = testing._HELPER_PREFIX + "backstop", True
    timers.append(stop)
    for timer in timers:
        timer.start()
    # The last resort, for code that holds the GIL for ever (so no Python thread can run):
    # a C-level timer that prints every thread's stack and exits.
    faulthandler.dump_traceback_later(budget + grace + 10, exit=True, file=terminal)

    def cancel() -> None:
        testing._start_budget(None)
        faulthandler.cancel_dump_traceback_later()
        if use_signal:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        for timer in timers:
            timer.cancel()

    item.stash[_cancel_key] = cancel
    testing._start_budget(budget)
    return True


_cancel_key = pytest.StashKey[object]()


def _abandon_run(fd: int, message: str, status: int) -> None:
    """Say why on `fd`, kill every child process, and leave now, without waiting for
    whatever cannot be stopped."""
    os.write(fd, message.encode("utf-8", "replace"))
    cleanup.kill_processes(list(cleanup.descendants().values()))
    cleanup.hard_exit(status)


def _terminal_fd(config: pytest.Config) -> int:
    """A file descriptor of the real terminal (or log): while a test runs, pytest's capture
    has fd 1 pointing at a temporary file, and what is written there is lost on exit."""
    capman = config.pluginmanager.getplugin("capturemanager")
    out = getattr(getattr(capman, "_global_capturing", None), "out", None)
    saved = getattr(out, "targetfd_save", None)
    return saved if isinstance(saved, int) else 1


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_cancel_timer(item: pytest.Item) -> bool:
    cancel = item.stash.get(_cancel_key, None)
    if cancel is not None:
        cancel()  # type: ignore[operator]
        del item.stash[_cancel_key]
    return True


# ---------------------------------------------------------------- the end of the run

def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _state is not None:
        _state.exitstatus = int(exitstatus)
        if _state.writer is not None:
            _state.writer.complete(int(exitstatus))


#: How long Python's own clean-up at exit may take before the run ends without it.
EXIT_GRACE = 10.0


def _arm_exit_watchdog(status: int) -> None:
    """Python's clean-up at exit can wait for ever on what student code left behind: a
    process pool's finalizer, for one, takes the pool's task lock, and a worker that was
    killed while holding it never gives it back.  A daemon thread keeps running during
    that clean-up; if the process is still there after EXIT_GRACE seconds, it ends it with
    the run's status (the reports are written by then)."""

    message = ("conclab: Python's clean-up at exit is stuck on something the tested code left behind "
               "(for example a process pool that was never closed); ending the run without it.\n")
    timer = threading.Timer(EXIT_GRACE, _abandon_run, (2, message, status))
    timer.name, timer.daemon = testing._HELPER_PREFIX + "exit", True
    timer.start()


@pytest.hookimpl(tryfirst=True, specname="pytest_unconfigure")
def pytest_unconfigure_arm_watchdog(config: pytest.Config) -> None:
    """Once student code has run here, arm the exit watchdog before any plugin's clean-up
    (pytest's own collects garbage, which can finalize what student code left behind).
    An xdist worker stays alive until the whole run ends, so there it is armed only when
    Python really exits."""
    if _state is None or not (_state.modules or _state.import_errors):
        return
    if os.environ.get("PYTEST_XDIST_WORKER"):
        atexit.register(_arm_exit_watchdog, _state.exitstatus)  # runs before earlier-registered clean-ups
    else:
        _arm_exit_watchdog(_state.exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """If student code left threads that never end or child processes, end the run anyway:
    the reports are written by now; kill the children and exit with the run's status."""
    if _state is None:
        return
    stuck = cleanup.stuck_non_daemon_threads(_state.session_threads)
    children = [p for pid, p in cleanup.descendants().items() if pid not in _state.session_children]
    if not stuck and not children:
        return
    if children:
        cleanup.kill_processes(children)
    if not stuck:
        return
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is not None:
        capman.stop_global_capturing()
    names = ", ".join(repr(t.name) for t in stuck)
    sys.stderr.write(f"conclab: {len(stuck)} thread(s) started by the tested code never finished ({names}); "
                     f"ending the run without waiting for them.\n")
    cleanup.hard_exit(_state.exitstatus)
