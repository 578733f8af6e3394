"""The grading machinery itself: time budgets, stuck-thread reports, lost thread
exceptions, import problems, runs that end although student threads never do."""

from __future__ import annotations

import os
import re
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable

import psutil
import pytest

from conclab import manifest
from conclab.dev import check as devcheck
from conclab.grading import runner

ROOT = manifest.course_root()


def grader(sandbox, test_source: str, impl_source: str, name: str = "test_fake.py"):
    sandbox.write(f"graders/01_threads/{name}", test_source)
    sandbox.write("impl/01_threads/threads.py", impl_source)


def test_deadlocked_non_daemon_threads_and_children_do_not_keep_the_run_alive(sandbox, no_process_left):
    grader(
        sandbox,
        """
        import multiprocessing, threading, time

        def test_leaves_a_deadlocked_thread_and_a_child(threads):
            threads.leave_a_mess()
            assert False, "fails on purpose"

        def test_still_graded(threads):
            pass
        """,
        """
        import multiprocessing, threading, time

        def leave_a_mess():
            lock = threading.Lock()
            lock.acquire()
            threading.Thread(target=lock.acquire, name="stuck-for-ever").start()
            multiprocessing.Process(target=time.sleep, args=(600,)).start()
        """,
    )
    started = time.monotonic()
    run = sandbox.pytest("graders", "--impl", "impl", "--junitxml", "report.xml")
    assert time.monotonic() - started < 60
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 failed, 1 passed" in run.stdout
    assert "stuck-for-ever" in run.stderr
    cases = list(ET.parse(sandbox.path / "report.xml").iter("testcase"))
    assert len(cases) == 2


def test_time_budget_failure_says_where_the_test_waits(sandbox):
    grader(
        sandbox,
        """
        import pytest

        @pytest.mark.timeout(2)
        def test_hangs(threads):
            threads.wait_for_ever()
        """,
        """
        import threading

        def wait_for_ever():
            lock = threading.Lock()
            lock.acquire()
            lock.acquire()
        """,
    )
    run = sandbox.pytest("graders", "--impl", "impl")
    assert run.returncode == 1
    assert "longer than its time budget of 2 s" in run.stdout
    assert "threads.py line 6, in wait_for_ever(): lock.acquire()" in run.stdout


def test_a_test_that_cannot_be_interrupted_is_ended_by_the_backstop(sandbox, no_process_left):
    grader(
        sandbox,
        """
        import pytest

        @pytest.mark.timeout(1)
        def test_hangs_with_the_alarm_blocked(threads):
            threads.block_alarm_and_wait()
        """,
        """
        import os, signal

        def block_alarm_and_wait():
            signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])
            read_end, write_end = os.pipe()
            os.read(read_end, 1)
        """,
    )
    started = time.monotonic()
    run = sandbox.pytest("graders", "--impl", "impl", timeout=60)
    took = time.monotonic() - started
    assert run.returncode == 3, run.stdout + run.stderr
    assert "cannot be stopped; ending the run" in run.stdout
    assert (
        "waiting to read from a pipe or socket at threads.py line 6, in block_alarm_and_wait(): os.read(read_end, 1)"
        in run.stdout
    )
    # The backstop fires 11 s in (budget 1 s + grace 10 s): 11.3-12.0 s with two CPU-bound loops
    # beside four copies of this test; 31.9 s once in a CI run, a loaded worker starting pytest.
    assert took < 50, f"the run ended after {took:.1f} s"


def test_code_that_holds_the_gil_for_ever_still_ends_the_run(sandbox, no_process_left):
    grader(
        sandbox,
        """
        import pytest

        @pytest.mark.timeout(1)
        def test_sums_for_ever(threads):
            threads.sum_for_ever()
        """,
        """
        import itertools

        def sum_for_ever():
            return sum(itertools.repeat(1))  # one C call that never returns nor lets go of the GIL
        """,
    )
    started = time.monotonic()
    run = sandbox.pytest("graders", "--impl", "impl", timeout=90)
    assert time.monotonic() - started < 60  # faulthandler ends it 21 s in; start-up is slow under load
    assert run.returncode != 0
    assert "Timeout" in run.stdout and "sum_for_ever" in run.stdout


def test_a_busy_thread_left_behind_is_stopped(sandbox):
    grader(
        sandbox,
        """
        import threading, time

        def test_leaves_a_spinning_thread(threads):
            threads.spin_in_background()

        def test_the_spinning_thread_is_gone(threads):
            time.sleep(0.2)
            assert [t.name for t in threading.enumerate() if t.name == "spinner"] == []
        """,
        """
        import threading

        def spin_in_background():
            def spin():
                while True:
                    pass
            threading.Thread(target=spin, name="spinner", daemon=True).start()
        """,
    )
    run = sandbox.pytest("graders", "--impl", "impl", "-p", "no:randomly")
    assert run.returncode == 0, run.stdout + run.stderr


def test_a_call_that_never_returns_is_stopped_after_its_test(sandbox):
    """A call the test gave up on runs in a grader's helper thread, but it runs student code:
    left spinning, it would slow down every later test."""
    grader(
        sandbox,
        """
        import threading, time

        from conclab.testing import call

        def test_gives_up_on_a_call(threads):
            call(threads.spin, within=0.5)

        def test_the_call_is_stopped(threads):
            time.sleep(0.2)
            assert [t.name for t in threading.enumerate() if "spin" in t.name] == []
        """,
        """
        def spin():
            while True:
                pass
        """,
    )
    run = sandbox.pytest("graders", "--impl", "impl", "-p", "no:randomly")
    assert "1 failed, 1 passed" in run.stdout, run.stdout + run.stderr
    assert "spin() did not return within 0.5 s" in run.stdout


def test_an_exception_lost_in_a_thread_fails_the_test(sandbox):
    grader(
        sandbox,
        """
        import threading

        def test_thread_raises(threads):
            t = threading.Thread(target=threads.divide)
            t.start()
            t.join()
        """,
        """
        def divide():
            return 1 / 0
        """,
    )
    run = sandbox.pytest("graders", "--impl", "impl")
    assert run.returncode == 1
    assert "nobody caught it" in run.stdout
    assert "raised ZeroDivisionError: division by zero" in run.stdout
    assert "threads.py line 2: return 1 / 0" in run.stdout


def test_import_problems_are_explained(sandbox):
    test = """
        def test_uses_the_module(threads):
            pass
        """
    cases = {
        "def broken(:\n": "has a syntax error at line 1",
        "raise SystemExit(0)\n": "must not exit",
        "import missing_module_xyz\n": "ModuleNotFoundError",
        "while True:\n    pass\n": "did not finish within 5 s",
    }
    for source, message in cases.items():
        grader(sandbox, test, source)
        run = sandbox.pytest("graders", "--impl", "impl")
        assert run.returncode == 1, source
        assert message in run.stdout, (source, run.stdout)


def test_a_missing_impl_folder_is_a_usage_error(sandbox):
    grader(sandbox, "def test_x(threads):\n    pass\n", "")
    run = sandbox.pytest("graders", "--impl", "no/such/folder")
    assert run.returncode == 4
    assert "--impl no/such/folder: no such folder" in run.stderr


def test_the_chaos_seed_is_printed_and_can_be_chosen(sandbox):
    grader(sandbox, "def test_x(threads):\n    pass\n", "")
    run = sandbox.pytest("graders", "--impl", "impl")
    assert "forced thread switches, seed " in run.stdout
    run = sandbox.pytest("graders", "--impl", "impl", "--chaos-seed", "4242")
    assert "seed 4242 (replay with --chaos-seed 4242)" in run.stdout


def test_an_untouched_stub_says_what_is_not_written_yet():
    run = devcheck.run_pytest(["graders/01_threads", "-k", "run_all_of_nothing"])
    assert "run_all is not written yet: it raises NotImplementedError (threads.py line" in run.output


def test_a_lock_taken_twice_is_diagnosed(tmp_path):
    mutant = next(m for m in devcheck.load_mutants(ROOT) if m.name == "lock_instead_of_rlock")
    devcheck.make_mutant(mutant, tmp_path)
    run = devcheck.run_pytest(["graders/02_locks", "-k", "deposit_all_is_atomic"], impl=tmp_path)
    assert run.returncode == 1
    assert "deposit_all([7]) did not return within 3 s" in run.output
    assert "is waiting to acquire a lock at bank.py line" in run.output
    assert "It already holds this lock: it took `self._lock`" in run.output
    assert run.test_time < manifest.find("02").budget + 5


def test_child_processes_import_the_topic_module_by_its_plain_name(sandbox):
    grader(
        sandbox,
        """
        import multiprocessing, subprocess, sys

        import pytest

        @pytest.mark.parametrize("method", ["spawn", "forkserver", "fork"])
        def test_a_child_imports_the_module(threads, method, tmp_path):
            if method not in multiprocessing.get_all_start_methods():
                pytest.skip(f"no {method} here")
            out = tmp_path / "out.txt"
            child = multiprocessing.get_context(method).Process(target=threads.write_name, args=(str(out),))
            child.start()
            child.join(30)
            assert child.exitcode == 0 and out.read_text() == "threads"

        def test_a_new_interpreter_imports_the_module(threads):
            code = "import threads; print(threads.__name__)"
            assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout == "threads\\n"
        """,
        """
        def write_name(path):
            with open(path, "w") as f:
                f.write(__name__)
        """,
    )
    run = sandbox.pytest("graders", "--impl", "impl")
    assert run.returncode == 0, run.stdout + run.stderr


def test_an_alone_test_never_shares_the_machine_with_another_test(sandbox):
    grader(
        sandbox,
        """
        import os, sys, time

        import pytest

        def record(tag):
            start = time.time()
            time.sleep(0.6)
            with open(os.environ["SPANS"], "a") as f:
                f.write(f"{tag} {start} {time.time()}\\n")

        @pytest.mark.alone
        def test_alone(threads):
            record("alone")

        @pytest.mark.parametrize("i", range(3))
        def test_shared(threads, i):
            record("shared")
        """,
        "",
    )
    import os
    import subprocess
    import sys

    spans = sandbox.path / "spans.txt"
    env = {**os.environ, "SPANS": str(spans), "CONCLAB_ROOT": str(ROOT)}
    env.pop("PYTEST_XDIST_WORKER", None)
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "graders", "--impl", "impl", "-q"]
    # Each run has a temporary folder of its own (as under grade-all); the locks' folder is shared.
    env["CONCLAB_LOCKS"] = str(sandbox.path / "locks")
    runs = []
    for i, extra in enumerate((["-k", "shared"], ["-k", "alone"], ["-k", "shared"])):
        (sandbox.path / f"tmp{i}").mkdir()
        runs.append(
            subprocess.Popen(
                command + extra,
                cwd=sandbox.path,
                env={**env, "TMPDIR": str(sandbox.path / f"tmp{i}")},
                stdout=subprocess.DEVNULL,
            )
        )
    assert [run.wait(120) for run in runs] == [0, 0, 0]
    rows = [line.split() for line in spans.read_text().splitlines()]
    alone = [(float(a), float(b)) for tag, a, b in rows if tag == "alone"]
    shared = [(float(a), float(b)) for tag, a, b in rows if tag == "shared"]
    assert len(alone) == 1 and len(shared) == 6
    ((a0, a1),) = alone
    assert all(b1 <= a0 or b0 >= a1 for b0, b1 in shared), (alone, shared)


def test_a_pool_left_running_is_terminated_cleanly(sandbox, no_process_left):
    # Killing an idle pool's workers outright would leave the pool's task lock taken for
    # ever, and Python's clean-up of the pool at exit would wait on it.
    grader(
        sandbox,
        """
        def test_leaves_a_pool(threads):
            threads.leave_a_pool()
            assert False, "fails on purpose"

        def test_still_graded(threads):
            pass
        """,
        """
        import multiprocessing

        pools = []

        def leave_a_pool():
            pool = multiprocessing.Pool(2)
            pool.map(abs, [-1, -2, -3])
            pools.append(pool)
        """,
    )
    run = sandbox.pytest("graders", "--impl", "impl")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 failed, 1 passed" in run.stdout
    assert "clean-up at exit is stuck" not in run.stderr


def test_a_clean_up_at_exit_that_never_ends_does_not_keep_the_run_alive(sandbox, no_process_left):
    grader(
        sandbox,
        """
        def test_passes(threads):
            pass
        """,
        """
        import atexit, time

        atexit.register(time.sleep, 600)
        """,
    )
    started = time.monotonic()
    run = sandbox.pytest("graders", "--impl", "impl", "--junitxml", "report.xml")
    assert time.monotonic() - started < 60
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout
    assert "clean-up at exit is stuck" in run.stderr
    assert (sandbox.path / "report.xml").exists()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="a daemon-style double fork needs os.fork")
def test_a_process_that_outlives_its_run_is_reported_then_killed(sandbox):
    # What the plugin reaps (a child of the run) is not reported; a server that escaped it
    # (a double fork: adopted by init, no child of the run) is, with its port, and then killed.
    grader(
        sandbox,
        """
        def test_starts_a_child_and_a_server_and_leaves(threads):
            threads.start_a_child()
            threads.start_a_server()
        """,
        """
        import multiprocessing, os, socket, time

        def start_a_child():
            multiprocessing.Process(target=time.sleep, args=(60,)).start()

        def start_a_server():
            if os.fork() == 0:
                if os.fork() == 0:
                    server = socket.create_server(("127.0.0.1", 0))
                    time.sleep(60)
                os._exit(0)
            os.wait()
        """,
    )
    left: list[str] = []
    returncode, output = runner.run_in_own_group(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "graders", "--impl", "impl"],
        sandbox.path,
        runner.child_env(ROOT),
        60,
        left=left,
    )
    assert returncode == 0, output
    assert len(left) == 1 and "listening on 127.0.0.1:" in left[0], left
    pid = int(re.search(r"process (\d+)", left[0]).group(1))
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_a_thread_started_where_one_ended_still_counts_as_new():
    """A thread's ident is often the one of a thread that has just ended: threads are told
    apart as objects, so the new one is still seen as left running, and still shown."""
    import threading

    import pytest

    from conclab.kit import state
    from conclab.kit import vocabulary as testing

    for _ in range(5):
        done, stop = threading.Event(), threading.Event()
        old = threading.Thread(target=done.wait, name="old")
        old.start()
        state.remember_test_threads()
        try:
            with pytest.raises(pytest.fail.Exception, match=r"still running \('new'\)") as failure:
                with testing.no_new_threads("the block"):
                    done.set()
                    old.join()
                    new = threading.Thread(target=stop.wait, args=(10,), name="new", daemon=True)
                    new.start()
            assert "new" in failure.value.msg.split("Where the threads are now:")[1]
        finally:
            stop.set()
            state.test_threads.clear()


def test_a_graded_test_knows_how_much_of_its_budget_is_left(sandbox):
    grader(
        sandbox,
        """
        import time

        import pytest

        from conclab.testing import time_left

        @pytest.mark.timeout(30)
        def test_left(threads):
            first = time_left()
            time.sleep(0.5)
            assert 28 < first <= 30 and first - 0.5 >= time_left() > first - 5, (first, time_left())
        """,
        "",
    )
    run = sandbox.pytest("graders", "--impl", "impl")
    assert run.returncode == 0, run.stdout + run.stderr


def _computing(seconds: float) -> Callable[[], object]:
    """A child process that computes for `seconds`; returns what waits for it."""
    import subprocess

    from conclab.kit import parallel

    if not hasattr(os, "fork"):  # a new interpreter: slow to start on a busy machine
        return subprocess.Popen([sys.executable, "-c", f"from conclab.testing import busy; busy({seconds})"]).wait
    pid = os.fork()
    if pid == 0:
        parallel.busy(seconds)
        os._exit(0)
    return lambda: os.waitpid(pid, 0)


def test_a_speed_up_measurement_ends_within_the_time_left():
    """Two worker processes that are no faster than one (each does all the work) are timed
    again and again, at a growing size: with a budget of 10 s, the measurement stops growing
    and stops timing in time."""
    from conclab.kit import parallel

    def run(size: int, workers: int) -> None:
        for wait in [_computing(size / 1000) for _ in range(workers)]:
            wait()

    started = time.monotonic()
    ends = started + 10
    verdict = parallel.judge_speedup(run, size=100, limit=10**9, time_left=lambda: ends - time.monotonic())
    took = time.monotonic() - started
    assert took < 10, f"took {took:.1f} s, size {verdict.size}, {verdict.rounds} rounds"
    assert verdict.workers_seen == 2 and verdict.rounds >= 3 and not verdict.convincing(), verdict


@pytest.mark.skipif(psutil.cpu_count() < 2, reason="a speed-up needs 2 CPUs")
def test_a_speed_up_measurement_grows_the_work_in_few_steps_to_just_enough():
    """The work grows towards ONE_WORKER seconds for one worker in steps aimed at it (not by
    doubling), so that the three speed-up graders stay short: work that takes size/1000 s
    reaches it in a few runs and does not overshoot it by much."""
    from conclab.kit import parallel

    calls: list[tuple[int, int]] = []

    def run(size: int, workers: int) -> None:  # correct: the work shared by `workers` processes
        calls.append((size, workers))
        for wait in [_computing(size / 1000 / workers) for _ in range(workers)]:
            wait()

    verdict = parallel.judge_speedup(run, size=10, limit=10**9, time_left=lambda: None)
    grown = [size for size, _ in calls[: calls.index((verdict.size, 2)) - 1]]  # the first round aside
    assert len(grown) <= 5 and grown[-1] == verdict.size, f"grown in {len(grown)} steps: {grown}"
    assert 0.8 * parallel.ONE_WORKER * 1000 <= verdict.size <= 2.5 * parallel.ONE_WORKER * 1000, grown  # starting aside
