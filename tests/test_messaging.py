"""The harness of the message-passing graders (conclab.messaging): a server program that
crashes, never listens or is left running by a failing test; client processes that fail
or hang.  Each case runs in a child pytest on a fake topic 14, the way graders run."""

from __future__ import annotations

from conclab.dev import check as devcheck

GRADERS = "graders/14_message_passing/test_fake.py"
IMPL = "impl/14_message_passing/kvstore.py"


def run(sandbox, test_source: str, impl_source: str):
    """The child pytest's result, and its tests' own time (set-up, call and tear-down, from its
    JUnit report): not the time it waited for the machine lock, which every test of a topic
    takes, while a speed-up grader of another run had the machine to itself."""
    sandbox.write(GRADERS, test_source)
    sandbox.write(IMPL, impl_source)
    report = sandbox.path / "report.xml"
    result = sandbox.pytest("graders", "--impl", "impl", f"--junitxml={report}", "-o", "junit_family=xunit1")
    return result, devcheck.read_report(report)[1]


def test_a_server_program_that_crashes_fails_with_its_output(sandbox, no_process_left):
    result, seconds = run(
        sandbox,
        """
        from conclab.testing import ServerProgram

        def test_server(kvstore, tmp_path):
            with ServerProgram(kvstore, tmp_path):
                pass
        """,
        """
        import sys
        if __name__ == "__main__":
            print("about to fail")
            raise SystemExit("the server cannot start: boom")
        """,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "ended (exit status 1) before it accepted a connection" in result.stdout
    assert "the server cannot start: boom" in result.stdout
    assert seconds < 30


def test_a_server_program_that_never_listens_fails_in_time_and_is_killed(sandbox, no_process_left):
    result, seconds = run(
        sandbox,
        """
        from conclab.testing import ServerProgram

        def test_server(kvstore, tmp_path):
            with ServerProgram(kvstore, tmp_path, ready_within=2):
                pass
        """,
        """
        import signal, time
        if __name__ == "__main__":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            print("thinking", flush=True)
            time.sleep(600)
        """,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "did not listen on port" in result.stdout and "thinking" in result.stdout
    assert seconds < 30


def test_a_failing_test_leaves_no_server_and_no_port_behind(sandbox, no_process_left):
    result, seconds = run(
        sandbox,
        """
        import json, psutil
        from conclab.testing import ServerProgram, port_is_free

        seen = {}

        def test_fails_while_the_server_runs(kvstore, tmp_path):
            with ServerProgram(kvstore, tmp_path) as server:
                seen.update(pid=server.process.pid, port=server.port)
                server.expect_running("at once")
                assert False, "fails on purpose"

        def test_the_server_is_gone():
            assert not psutil.pid_exists(seen["pid"]) or psutil.Process(seen["pid"]).status() == psutil.STATUS_ZOMBIE
            assert port_is_free(seen["port"])
        """,
        """
        import argparse, signal, time
        from multiprocessing.connection import Listener
        if __name__ == "__main__":
            parser = argparse.ArgumentParser()
            parser.add_argument("command")
            parser.add_argument("--port", type=int)
            parser.add_argument("--authkey-file")
            options = parser.parse_args()
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            listener = Listener(("127.0.0.1", options.port))
            time.sleep(600)
        """,
    )
    assert "1 failed, 1 passed" in result.stdout, result.stdout + result.stderr
    assert "fails on purpose" in result.stdout
    assert seconds < 30


def test_client_processes_that_fail_or_hang_are_named_and_killed(sandbox, no_process_left):
    result, seconds = run(
        sandbox,
        """
        from conclab.kit import workers
        from conclab.testing import ClientProcesses

        def test_clients(kvstore):
            calls = [(workers.square, (7,)), (workers.fail, ()), (workers.sleep_for, (600,))]
            with ClientProcesses(calls, "client") as clients:
                clients.results(within=3)

        def test_results_in_order(kvstore):
            with ClientProcesses([(workers.square, (i,)) for i in range(3)], "client") as clients:
                assert clients.results(within=20) == [0, 1, 4]
        """,
        "",
    )
    assert "1 failed, 1 passed" in result.stdout, result.stdout + result.stderr
    assert "2 of 3 client processes did not do their part" in result.stdout
    assert "client 1 raised RuntimeError: this target fails on purpose" in result.stdout
    assert "client 2 was still running after 3 s" in result.stdout
    assert seconds < 40
