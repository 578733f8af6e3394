"""For the graders of topic 14: the student's key-value server run as its own program,
a raw connection that speaks the protocol, and clients running in child processes.

    with ServerProgram(kvstore, tmp_path) as server:   python kvstore.py serve ..., killed at the end
        conn = server.connect()                         the grader's own client (a Connection)
        server.ask(conn, ("get", "k"))                  one request, its reply, with a bound
    with server_thread(kvstore) as server:             KVServer(...).start() here, closed at the end
        with ClientProcesses([(put_range, (server.address, server.authkey, "a", 50))]) as clients:
            clients.results(within=20)                  what each client process returned

Nothing here waits without a bound, and the server program never outlives the test.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import secrets
import socket
import subprocess
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Client, Connection
from pathlib import Path
from time import monotonic as _now
from time import sleep as _sleep
from typing import Any

import psutil

from conclab.core import diagnose, guard

from .vocabulary import call, fail, start

HOST = "127.0.0.1"


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Whether a new server could listen on `port` now (as multiprocessing's Listener does,
    with SO_REUSEADDR, so connections that are merely closing do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if os.name == "posix":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
            sock.listen(1)
        except OSError:
            return False
    return True


def new_authkey() -> bytes:
    return secrets.token_hex(16).encode()


@contextmanager
def server_thread(kvstore: Any) -> Iterator[Any]:
    """The student's KVServer on a free loopback port with a fresh key, serving in a
    background thread of this process (its start()); closed when the block ends.  The
    key is on the server object as `test_authkey`."""
    __tracebackhide__ = True
    authkey = new_authkey()
    server = call(kvstore.KVServer, (HOST, 0), authkey, within=5, what=f"KVServer(({HOST!r}, 0), authkey)")
    server.test_authkey = authkey
    call(server.start, within=5, what="server.start()")
    try:
        yield server
    finally:
        start(server.close, what="server.close()").wait(10)


class ServerProgram:
    """`python kvstore.py serve --port PORT --authkey-file FILE`, the student's server as a
    program of its own on a free loopback port, with a fresh secret; its output goes to a
    file that failure messages quote.  Killed when the block ends, whatever happened."""

    def __init__(self, kvstore: Any, folder: Path, ready_within: float = 20.0):
        self.ready_within = ready_within
        self.script = Path(kvstore.__file__)
        self.folder = Path(folder)
        self.authkey = new_authkey()
        self.port = free_port()
        self.address = (HOST, self.port)
        self.output_path = self.folder / "server-output.txt"
        self.command = f"python {self.script.name} serve --port {self.port} --authkey-file authkey.txt"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> ServerProgram:
        (self.folder / "authkey.txt").write_bytes(self.authkey + b"\n")
        with open(self.output_path, "wb") as output:
            self.process = subprocess.Popen(
                guard.program_command(
                    str(self.script), ["serve", "--port", str(self.port), "--authkey-file", "authkey.txt"]
                ),
                cwd=self.folder,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            self._wait_until_listening(self.ready_within)
        except BaseException:
            self.kill()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        if self.process is not None:
            self.process.wait(10)

    def output(self, lines: int = 12) -> str:
        """The last lines the program printed, ready to append to a failure message."""
        try:
            text = self.output_path.read_text(encoding="utf-8", errors="replace").rstrip()
        except OSError:
            text = ""
        if not text:
            return " It printed nothing."
        tail = text.splitlines()[-lines:]
        stub = [line.split(":", 1)[1].strip() for line in tail if line.startswith("NotImplementedError:")]
        todo = f" {stub[-1]} is not written yet: replace the TODO there with your code." if stub else ""
        return f"{todo} The last lines the server program printed:\n" + "\n".join("    " + line for line in tail)

    def exit_status(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def expect_running(self, after: str) -> None:
        """Fail if the program has ended (it should run until a stop request)."""
        __tracebackhide__ = True
        status = self.exit_status()
        if status is not None:
            fail(
                f"The server program ended (exit status {status}) {after}; it should keep serving until a client "
                f"sends ('stop',).{self.output()}"
            )

    def wait_for_exit(self, within: float) -> int | None:
        deadline = _now() + within
        while self.exit_status() is None and _now() < deadline:
            _sleep(0.02)
        return self.exit_status()

    def _wait_until_listening(self, within: float) -> None:
        __tracebackhide__ = True
        deadline = _now() + within
        while True:
            status = self.exit_status()
            if status is not None:
                fail(
                    f"The server program `{self.command}` ended (exit status {status}) before it accepted a "
                    f"connection.{self.output()}"
                )
            if self._listening():
                return
            if _now() > deadline:
                fail(
                    f"The server program `{self.command}` did not listen on port {self.port} within "
                    f"{within:g} s.{self.output()}"
                )
            _sleep(0.05)

    def _listening(self) -> bool:
        """Whether the program listens on its port yet, seen from outside (a test connection
        would be a client that leaves during the handshake, which is a test of its own)."""
        try:
            proc = psutil.Process(self.process.pid)
            connections = getattr(proc, "net_connections", proc.connections)(kind="tcp")
        except psutil.AccessDenied:  # cannot look: knock instead
            try:
                socket.create_connection(self.address, timeout=1.0).close()
            except OSError:
                return False
            return True
        except psutil.Error:
            return False
        return any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr[1] == self.port for c in connections)

    def ask(self, conn: Connection, request: Any, within: float = 5.0) -> Any:
        """Send one request on a connection of the grader's and return the reply."""
        __tracebackhide__ = True
        conn.send(request)
        return self.reply(conn, repr(request), within)

    def reply(self, conn: Connection, request: str, within: float = 5.0) -> Any:
        """The reply to a request already sent on `conn`."""
        __tracebackhide__ = True
        try:
            if conn.poll(within):
                return conn.recv()
            problem = f"sent no reply to the request {request} within {within:g} s"
        except (EOFError, OSError):
            problem = f"closed the connection instead of replying to the request {request}"
        self.expect_running(f"when it got the request {request}")
        fail(
            f"The server {problem}. Every request deserves a reply, ('error', message) when it cannot be "
            f"served, and the connection should stay open for the next request.{self.output()}"
        )

    def connect(self, within: float = 5.0) -> Connection:
        """The grader's own connection, authenticated with the server's key."""
        __tracebackhide__ = True
        job = start(Client, self.address, authkey=self.authkey, what="Client(address, authkey=the right key)")
        if not job.wait(within):
            self.expect_running("while a client was connecting")
            fail(
                f"A client that has the right key connected, but the handshake did not end within {within:g} s. "
                "The handshake is the server's job: Listener(address, authkey=authkey) sends the client a "
                "challenge as soon as accept() takes its connection. Does the server create its Listener with the "
                f"authkey, and call accept() again while other clients are connected?{self.output()}"
            )
        if isinstance(job.error, (EOFError, OSError)):
            self.expect_running("when a client connected")
            fail(
                f"The server closed the connection of a client that has the right key during the handshake "
                f"({type(job.error).__name__}: {job.error}).{self.output()}"
            )
        return job.result()


# ------------------------------------------------------------------ clients in child processes
# Targets of child processes must be importable by name: they live here, not in a test file.


def put_range(address: tuple, authkey: bytes, prefix: str, count: int) -> int:
    """put(prefix + i, i) for every i below count, through the student's KVClient."""
    import kvstore

    with kvstore.KVClient(address, authkey) as client:
        for i in range(count):
            client.put(f"{prefix}{i}", i)
    return count


def put_and_get(address: tuple, authkey: bytes, prefix: str, count: int) -> int:
    """put(prefix + i, i) and read each one back, through the student's KVClient."""
    import kvstore

    with kvstore.KVClient(address, authkey) as client:
        for i in range(count):
            client.put(f"{prefix}{i}", i)
            value = client.get(f"{prefix}{i}")
            if value != i:
                raise AssertionError(f"get({prefix}{i!r}) gave {value!r} right after put({prefix}{i!r}, {i})")
    return count


def request_and_vanish(address: tuple, authkey: bytes, request: tuple) -> None:
    """Send one request and hang up at once, without waiting for the reply."""
    conn = Client(address, authkey=authkey)
    conn.send(request)
    conn.close()


def _client_main(results: Any, index: int, fn: Callable, args: tuple) -> None:
    try:
        results.put((index, True, _call(fn, args)))
    except BaseException as error:  # noqa: BLE001 - reported to the grader, never lost
        frames = traceback.extract_tb(error.__traceback__)
        where = f" (at {Path(frames[-1].filename).name} line {frames[-1].lineno})" if frames else ""
        results.put((index, False, f"{type(error).__name__}: {error}{where}"))


def _call(fn: Callable, args: tuple) -> Any:
    return fn(*args)  # what fn does is done for whoever handed it over (the guard's _DISPATCH)


class ClientProcesses:
    """Run fn(*args) for each (fn, args) in a child process of its own, all at once."""

    def __init__(self, calls: list[tuple[Callable, tuple]], what: str = "client"):
        self.calls = calls
        self.what = what
        context = multiprocessing.get_context()
        self._results = context.Queue()
        self._procs = [
            context.Process(target=_client_main, args=(self._results, i, fn, args), daemon=True, name=f"{what} {i}")
            for i, (fn, args) in enumerate(calls)
        ]

    def __enter__(self) -> ClientProcesses:
        for proc in self._procs:
            proc.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self._procs:
            if proc.is_alive():
                proc.kill()
            proc.join(5)
        self._results.close()
        self._results.join_thread()

    def results(self, within: float) -> list:
        """What each call returned; fails naming the clients that raised or did not finish."""
        __tracebackhide__ = True
        got: dict[int, tuple[bool, Any]] = {}
        deadline = _now() + within
        while len(got) < len(self._procs) and _now() < deadline:
            try:
                index, ok, value = self._results.get(timeout=0.1)
                got[index] = (ok, value)
            except queue.Empty:
                if all(p.exitcode is not None for i, p in enumerate(self._procs) if i not in got):
                    try:  # each has ended: take what is left in the queue, then stop waiting
                        while True:
                            index, ok, value = self._results.get(timeout=0.5)
                            got[index] = (ok, value)
                    except queue.Empty:
                        break
        problems = [
            f"  - {self.what} {i} raised {diagnose.short(value)}" for i, (ok, value) in sorted(got.items()) if not ok
        ]
        problems += [
            f"  - {self.what} {i} "
            + (
                f"was still running after {within:g} s"
                if proc.exitcode is None
                else f"ended with exit code {proc.exitcode} before it could report"
            )
            for i, proc in enumerate(self._procs)
            if i not in got
        ]
        if problems:
            fail(
                f"{len(problems)} of {len(self._procs)} {self.what} processes did not do their part:\n"
                + "\n".join(problems)
            )
        return [got[i][1] for i in range(len(self._procs))]
