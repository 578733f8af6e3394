"""Graders for topic 14: kvstore.py.

Most tests start the student's server as a program of its own (`python kvstore.py serve
...`, see conclab.messaging.ServerProgram) and talk to it from the test and from client
processes; the lost-update test runs it in a thread here, where forced thread switches
reach its code.
"""

import socket
import struct
import threading
import time
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Listener

import pytest

from conclab.testing import (
    HOST,
    ClientProcesses,
    ServerProgram,
    call,
    expect,
    fail,
    new_authkey,
    no_new_threads,
    port_is_free,
    put_and_get,
    put_range,
    request_and_vanish,
    run_threads,
    server_thread,
    shown,
    start,
)

MALFORMED = [
    "hello",
    42,
    (),
    ("get",),
    ("get", "k", "extra"),
    ("put", "k"),
    ("frobnicate", "k"),
    ("put", ["a list is no key"], 1),
]


@pytest.fixture
def server(kvstore, tmp_path):
    with ServerProgram(kvstore, tmp_path) as program:
        yield program


def connect(kvstore, address, authkey, what="KVClient(address, authkey)"):
    return call(kvstore.KVClient, address, authkey, within=5, what=what)


def is_error(reply):
    return isinstance(reply, tuple) and len(reply) == 2 and reply[0] == "error" and isinstance(reply[1], str)


def raises(exc_type, fn, *args, what):
    """Call fn(*args) with a bound and return what it raised; fail if it raised nothing."""
    try:
        value = call(fn, *args, within=5, what=what)
    except exc_type as error:
        return error
    fail(f"{what} returned {shown(value)}; it should raise {exc_type.__name__}.")


# ------------------------------------------------------------------ the protocol


def test_the_server_program_stores_gets_and_deletes_values(kvstore, server):
    with connect(kvstore, server.address, server.authkey) as kv:
        call(kv.put, "colour", "blue", within=5)
        expect(
            call(kv.get, "colour", within=5) == "blue", "After put('colour', 'blue'), get('colour') should give 'blue'."
        )
        call(kv.put, "colour", "green", within=5)
        expect(call(kv.get, "colour", within=5) == "green", "put('colour', 'green') should replace 'blue'.")
        value = {"tags": [1, 2], "none": None}
        call(kv.put, ("point", 3), value, within=5)
        got = call(kv.get, ("point", 3), within=5)
        expect(
            got == value,
            f"put(('point', 3), {shown(value)}) then get(('point', 3)) gave {shown(got)}: keys and values can "
            "be any picklable Python objects (keys must be hashable).",
        )
        call(kv.put, "nothing", None, within=5)
        expect(call(kv.get, "nothing", within=5) is None, "A key whose value is None should give None.")
        with connect(kvstore, server.address, server.authkey, "a second KVClient") as other:
            got = call(other.get, "colour", within=5)
            expect(
                got == "green",
                f"A second client should see what the first one stored: get('colour') gave "
                f"{shown(got)}, expected 'green'. There is one store, in the server, shared by every client.",
            )
        call(kv.delete, "colour", within=5)
        raises(KeyError, kv.get, "colour", what="get('colour') after delete('colour')")
        raises(KeyError, kv.get, "never stored", what="get('never stored')")
    server.expect_running("after a client closed its connection")


#: Requests of one key's life and the replies they get, in order.
ROUND_TRIP = [
    (("put", "k", 41), ("ok", None)),
    (("get", "k"), ("ok", 41)),
    (("put", "k", 42), ("ok", None)),
    (("get", "k"), ("ok", 42)),
    (("delete", "k"), ("ok", None)),
]


def test_replies_follow_the_protocol(server):
    conn = server.connect()
    for request, expected in ROUND_TRIP:
        reply = server.ask(conn, request)
        expect(reply == expected, f"The reply to {shown(request)} should be {shown(expected)}; got {shown(reply)}.")
    reply = server.ask(conn, ("get", "k"))
    expect(
        is_error(reply),
        f"The reply to ('get', 'k') for a key that is not there should be ('error', message) "
        f"with a message saying so; got {shown(reply)}.",
    )
    conn.close()


def test_a_malformed_request_gets_an_error_reply_and_the_connection_stays_usable(kvstore, server):
    conn = server.connect()
    for request in MALFORMED:
        reply = server.ask(conn, request)
        expect(
            is_error(reply),
            f"The reply to the malformed request {shown(request)} should be ('error', message); got {shown(reply)}.",
        )
    conn.send_bytes(b"these bytes are not a pickle")
    reply = server.reply(conn, "b'these bytes are not a pickle' (bytes that are not a pickle)")
    expect(
        is_error(reply),
        f"The reply to bytes that are not a pickle should be ('error', message); got {shown(reply)}. "
        "conn.recv() raises when it cannot unpickle a message: catch that, reply, and go on.",
    )
    reply = server.ask(conn, ("put", "k", 1))
    expect(
        reply == ("ok", None),
        f"After the malformed requests, ('put', 'k', 1) on the same connection should get ('ok', None); got {shown(reply)}.",
    )
    conn.close()
    with connect(kvstore, server.address, server.authkey) as kv:
        error = raises(RuntimeError, kv.put, ["a list is no key"], 1, what="KVClient.put(['a list is no key'], 1)")
        expect(str(error), "The RuntimeError for an error reply should carry the server's message.")
        expect(call(kv.get, "k", within=5) == 1, "After an error reply, the KVClient should still work.")


def test_handle_answers_every_request_and_never_raises(kvstore):
    with server_thread(kvstore) as server:

        def handle(request):
            what = f"server.handle({shown(request)})"
            try:
                return call(server.handle, request, within=5, what=what)
            except Exception as error:  # noqa: BLE001 - any exception of handle is the failure
                raised = shown(error)
            fail(
                f"{what} raised {raised}. handle(request) never raises: for a request it cannot serve it "
                "returns ('error', message), the reply the client then gets."
            )

        for request, expected in ROUND_TRIP:
            reply = handle(request)
            expect(
                reply == expected,
                f"server.handle({shown(request)}) should return {shown(expected)}; it returned {shown(reply)}.",
            )
        for request in [("get", "k"), ("delete", "k")]:
            reply = handle(request)
            expect(
                is_error(reply) and kvstore.NO_SUCH_KEY in reply[1],
                f"server.handle({shown(request)}) for a key that is not there should return "
                f"('error', '{kvstore.NO_SUCH_KEY}: ...'); it returned {shown(reply)}.",
            )
        for request in MALFORMED:
            reply = handle(request)
            expect(
                is_error(reply),
                f"server.handle({shown(request)}), a malformed request, should return ('error', message); it "
                f"returned {shown(reply)}.",
            )


# ------------------------------------------------------------------ the client, against a server of the grader's


class GraderServer:
    """A server of the grader's own: one Listener, the connections a KVClient opens, and
    the requests that arrive on them, answered by hand."""

    def __init__(self):
        self.authkey = new_authkey()
        self.listener = Listener((HOST, 0), backlog=8, authkey=self.authkey)
        self.address = self.listener.address
        self.accepting = None
        self.conns = []

    def accept(self):
        self.accepting = start(self.listener.accept, what="the grader's server, waiting for the KVClient to connect")

    def connection(self, what):
        if not self.accepting.wait(5):
            fail(f"{what}: the KVClient did not connect to the server within 5 s.")
        conn = self.accepting.result()
        self.conns.append(conn)
        return conn

    def exchange(self, conn, job, expected, reply):
        """The request `job` sends on `conn` must be `expected`; `reply` is the answer."""
        if not conn.poll(5):
            job.wait(1)
            fail(
                f"{job.what} sent no request within 5 s on the connection the KVClient had opened. A KVClient "
                "is one connection to the server: open it once and send every request on it (send, then recv "
                "the reply)." + (f" It raised {shown(job.error)}." if job.error else "")
            )
        try:
            request = conn.recv()
        except EOFError:
            fail(f"{job.what} closed the KVClient's connection instead of sending the request {shown(expected)}.")
        got = tuple(request) if isinstance(request, list) else request
        expect(got == expected, f"{job.what} should send the request {shown(expected)}; it sent {shown(request)}.")
        conn.send(reply)
        return job.finished(within=5)

    def expect_closed(self, conn, what, hint):
        try:
            if conn.poll(5):
                conn.recv()
        except (EOFError, OSError):
            return
        fail(f"After {what}, the KVClient's connection was still open 5 s later: {hint}")

    def close(self):
        if self.accepting is not None and self.accepting.running:
            try:  # wake the accept() that waits for a client that never came
                socket.create_connection(self.address, timeout=1.0).close()
            except OSError:
                pass
            self.accepting.wait(2)
        for conn in self.conns:
            conn.close()
        self.listener.close()


def outcome(job):
    return f"raised {shown(job.error)}" if job.error else f"returned {shown(job.value)}"


def test_the_client_speaks_the_protocol_over_one_connection(kvstore):
    server = GraderServer()
    try:
        server.accept()
        kv = connect(kvstore, server.address, server.authkey, "KVClient(address, authkey), to a server of the grader's")
        job = start(kv.put, "colour", "blue", what="KVClient.put('colour', 'blue')")
        conn = server.connection(job.what)
        server.exchange(conn, job, ("put", "colour", "blue"), ("ok", None))
        expect(job.error is None, f"{job.what} got the reply ('ok', None) and {outcome(job)}.")
        job = server.exchange(
            conn, start(kv.get, "colour", what="KVClient.get('colour')"), ("get", "colour"), ("ok", "blue")
        )
        expect(
            job.error is None and job.value == "blue",
            f"{job.what} got the reply ('ok', 'blue') and {outcome(job)}; it should return 'blue'.",
        )
        missing = ("error", f"{kvstore.NO_SUCH_KEY}: 'size'")
        job = server.exchange(conn, start(kv.get, "size", what="KVClient.get('size')"), ("get", "size"), missing)
        expect(
            isinstance(job.error, KeyError),
            f"{job.what} got the reply {shown(missing)} and {outcome(job)}; a missing key raises KeyError.",
        )
        job = server.exchange(
            conn, start(kv.delete, "colour", what="KVClient.delete('colour')"), ("delete", "colour"), ("ok", None)
        )
        expect(job.error is None, f"{job.what} got the reply ('ok', None) and {outcome(job)}.")
        refused = ("error", "the store is read-only today")
        job = server.exchange(conn, start(kv.put, "x", 1, what="KVClient.put('x', 1)"), ("put", "x", 1), refused)
        expect(
            isinstance(job.error, RuntimeError) and "the store is read-only today" in str(job.error),
            f"{job.what} got the reply {shown(refused)} and {outcome(job)}; an error reply raises "
            "RuntimeError(message), with the server's message.",
        )
        job = server.exchange(conn, start(kv.stop, what="KVClient.stop()"), ("stop",), ("ok", None))
        expect(job.error is None and job.value is None, f"{job.what} got the reply ('ok', None) and {outcome(job)}.")
        call(kv.close, within=5, what="KVClient.close()")
        server.expect_closed(conn, "KVClient.close()", "close() closes the client's Connection.")

        server.accept()
        with connect(kvstore, server.address, server.authkey, "KVClient(address, authkey) in a `with` block") as kv:
            job = start(kv.get, "colour", what="KVClient.get('colour'), inside `with KVClient(...) as kv:`")
            conn = server.connection(job.what)
            server.exchange(conn, job, ("get", "colour"), ("ok", "red"))
            expect(job.error is None and job.value == "red", f"{job.what} got ('ok', 'red') and {outcome(job)}.")
        server.expect_closed(
            conn,
            "the end of a `with KVClient(...) as kv:` block",
            "leaving the block calls __exit__, which should close the client (call close()).",
        )
    finally:
        server.close()


# ------------------------------------------------------------------ many clients at once


def test_a_slow_client_does_not_block_the_others(kvstore, server):
    idle = connect(kvstore, server.address, server.authkey, "KVClient(address, authkey), a client that then idles")
    call(idle.put, "idle", 1, within=5)
    half = server.connect()  # and one that stops in the middle of a request
    raw = socket.socket(fileno=half.fileno())
    raw.sendall(struct.pack("!i", 1000) + b"only the first bytes")
    raw.detach()
    job = start(kvstore.KVClient, server.address, server.authkey, what="KVClient(address, authkey)")
    if not job.wait(5):
        fail(
            "While two clients were connected and waiting (one idle, one in the middle of a request), a third client "
            "could not even connect within 5 s: the server serves one client at a time. Give each client a thread "
            "of its own (threading.Thread(target=..., args=(conn,)).start()) and go straight back to accept()."
        )
    with job.result() as third:
        call(third.put, "third", 3, within=5)
        expect(call(third.get, "idle", within=5) == 1, "The third client should see the idle client's value.")
    calls = [(put_and_get, (server.address, server.authkey, f"p{i}-", 30)) for i in range(3)]
    with ClientProcesses(calls, "client") as clients:
        clients.results(within=30)
    call(idle.close, within=5)
    half.close()


def test_many_clients_can_connect_at_once(kvstore, server):
    clients = 12
    everyone_ready = threading.Barrier(clients)
    connected = []

    def client(i):
        everyone_ready.wait(10)
        kv = kvstore.KVClient(server.address, server.authkey)
        connected.append(i)
        return kv

    jobs = [start(client, i, what=f"KVClient(address, authkey) #{i}") for i in range(clients)]
    last_progress, seen = time.monotonic(), 0
    while len(connected) < clients and time.monotonic() - last_progress < 5:  # stalled for 5 s: stuck
        time.sleep(0.05)
        if len(connected) > seen:
            last_progress, seen = time.monotonic(), len(connected)
    if len(connected) < clients:
        server.expect_running("while many clients connected")
        fail(
            f"{clients} clients connected at the same moment, and {clients - len(connected)} of them were still "
            "waiting for the handshake 5 s after the last one got through. New connections wait in the listen queue until accept() takes "
            "them, and the Listener's queue holds one connection unless you ask for more: create it with "
            "Listener(address, backlog=64, authkey=authkey), and go straight back to accept() after each client."
        )
    for job in jobs:
        call(job.result().close, within=5)


def test_concurrent_puts_from_client_processes_lose_nothing(server):
    calls = [(put_range, (server.address, server.authkey, f"c{i}-", 100)) for i in range(4)]
    with ClientProcesses(calls, "client") as clients:
        clients.results(within=40)
    conn = server.connect()
    lost = [f"c{i}-{j}" for i in range(4) for j in range(100) if server.ask(conn, ("get", f"c{i}-{j}")) != ("ok", j)]
    expect(
        not lost,
        f"4 client processes put 100 keys each at the same time; {len(lost)} of the 400 were lost "
        f"(for example {lost[:3]}).",
    )


@pytest.mark.chaos(rate=1 / 25)  # more forced switches: the window of a lost update is a few opcodes wide
def test_concurrent_puts_into_a_server_thread_lose_nothing(kvstore):
    clients, puts = 6, 80
    with server_thread(kvstore) as server:
        all_connected, connected, crashed = threading.Barrier(clients), [], []

        def client(i):
            try:
                with kvstore.KVClient(server.address, server.test_authkey) as kv:
                    connected.append(i)
                    try:
                        all_connected.wait(5)  # every client puts at the same time as the others
                    except threading.BrokenBarrierError:
                        if crashed:
                            return  # the error of the client that crashed is the one to report
                        fail(
                            f"{clients} clients connected at the same time, but after 5 s only {len(connected)} of "
                            "them had got in: the others still waited for the server. A server that serves one "
                            "client at a time lets nobody else in meanwhile: serve each client in a thread of its "
                            "own."
                        )
                    for j in range(puts):
                        kv.put(f"t{i}-{j}", j)
            except BaseException:
                crashed.append(i)
                all_connected.abort()  # the others stop waiting for this one
                raise

        run_threads(clients, client, within=40, what=f"a client putting {puts} keys")
        with connect(kvstore, server.address, server.test_authkey) as kv:
            lost = [
                f"t{i}-{j}" for i in range(clients) for j in range(puts) if call(_get_or_none, kv, f"t{i}-{j}") != j
            ]
    expect(
        not lost,
        f"{clients} clients put {puts} keys each at the same time; {len(lost)} of the {clients * puts} were "
        f"lost (for example {lost[:3]}). Each client has a thread in the server, and the threads share the store: "
        "a put that reads the store, changes a copy and writes it back can undo a put that happened in between. "
        "Make every change to the store under one lock.",
    )


def _get_or_none(kv, key):
    try:
        return kv.get(key)
    except KeyError:
        return None


# ------------------------------------------------------------------ authentication


def _intrude(address):
    """A client that does not know the key: it sends a put anyway and reads whatever comes."""
    conn = Client(address)
    try:
        conn.send(("put", "intruder", "was here"))
        if conn.poll(3):
            conn.recv()
    except Exception:  # noqa: BLE001 - a refused intruder sees errors of every kind
        pass
    finally:
        conn.close()


def test_a_wrong_authkey_is_refused_and_the_others_keep_working(server):
    calls = [(put_and_get, (server.address, server.authkey, "good-", 150))]
    with ClientProcesses(calls, "client with the right key") as clients:
        for _ in range(3):
            job = start(Client, server.address, authkey=b"not the key", what="Client(address, authkey=b'not the key')")
            if not job.wait(5):
                fail(
                    "A client with a wrong authkey was neither refused nor served within 5 s: it waited for the "
                    "server's challenge. A Listener created with authkey=authkey sends every client a challenge "
                    "that only the right key answers, and accept() refuses the others."
                )
            if not isinstance(job.error, AuthenticationError):
                server.wait_for_exit(1.0)  # a connection reset may mean the server program is ending
            server.expect_running(
                "while a client with the right key was working and another, with a wrong authkey, tried to connect"
            )
            expect(
                isinstance(job.error, AuthenticationError),
                "A client with a wrong authkey should be refused: its "
                "Client(...) should raise multiprocessing.AuthenticationError; "
                + (f"it raised {shown(job.error)}." if job.error else "it was let in."),
            )
        clients.results(within=30)
    start(_intrude, server.address, what="a client without any authkey").wait(5)
    server.expect_running("after a client without any authkey tried to connect")
    conn = server.connect()
    reply = server.ask(conn, ("get", "intruder"))
    expect(
        is_error(reply),
        f"A client without any authkey managed to store a value (('get', 'intruder') gave "
        f"{shown(reply)}). Requests are pickles, and unpickling runs code: never read a request from a client that "
        "has not proved it knows the key.",
    )
    conn.close()


# ------------------------------------------------------------------ clients that go away


def test_a_client_that_disconnects_does_not_hurt_the_server(kvstore, server):
    socket.create_connection(server.address, timeout=5).close()
    time.sleep(0.3)
    server.expect_running("after a client connected and left during the handshake (before proving it knows the key)")

    conn = server.connect()
    raw = socket.socket(fileno=conn.fileno())
    raw.sendall(struct.pack("!i", 1000) + b"only the first bytes")
    raw.detach()
    conn.close()
    time.sleep(0.3)
    server.expect_running("after a client left in the middle of sending a request")

    calls = [(request_and_vanish, (server.address, server.authkey, ("put", "vanished", 1))) for _ in range(3)]
    with ClientProcesses(calls, "client that hangs up before the reply") as clients:
        clients.results(within=30)
    time.sleep(0.3)
    server.expect_running("after clients hung up before reading the reply to their request")

    with connect(kvstore, server.address, server.authkey, "KVClient(address, authkey), after those clients") as kv:
        call(kv.put, "after", "fine", within=5)
        expect(
            call(kv.get, "after", within=5) == "fine",
            "After clients disconnected, a new client should be served as usual.",
        )


# Without forced switches: they would add nothing here (no race is tried), and under them a
# thread of the grader's that starts while the server starts a client's thread can fail to start.
@pytest.mark.no_chaos
def test_clients_that_leave_end_only_their_own_thread(kvstore):
    # In a server thread of this process: an exception that ends one of its threads fails the test.
    with server_thread(kvstore) as server:

        def client(after):
            job = start(Client, server.address, authkey=server.test_authkey, what=f"Client(address, authkey), {after}")
            if not job.wait(5):
                fail(
                    f"After {after}, a client with the right key could not connect within 5 s: the server took no "
                    "new clients any more. A client that leaves must cost only that client: accept() raises "
                    "EOFError or OSError for a client that leaves during the handshake, and recv() and send() "
                    "raise EOFError or OSError for one that has gone: catch them."
                )
            return job.result()

        socket.create_connection(server.address, timeout=5).close()
        conn = client("a client left during the handshake")
        raw = socket.socket(fileno=conn.fileno())
        raw.sendall(struct.pack("!i", 1000) + b"only the first bytes")
        raw.detach()
        conn.close()
        conn = client("a client left in the middle of sending a request")
        conn.send(("put", "gone", 1))
        conn.close()
        client("a client left before the reply to its request").close()
        time.sleep(0.5)
        what = "KVClient(address, authkey), after clients left in the handshake, in a request and before a reply"
        with connect(kvstore, server.address, server.test_authkey, what) as kv:
            call(kv.put, "after", "fine", within=5)
            expect(
                call(kv.get, "after", within=5) == "fine",
                "After clients left, a new client should be served as usual.",
            )


# ------------------------------------------------------------------ stopping


def test_stop_ends_the_server_program_and_releases_the_port(kvstore, server):
    with connect(kvstore, server.address, server.authkey) as kv:
        still_connected = server.connect()  # a client that is still there when the server stops
        result = call(kv.stop, within=5, what="KVClient.stop()")
    expect(result is None, f"stop() should return None; got {shown(result)}.")
    status = server.wait_for_exit(10)
    expect(
        status is not None,
        "After a client sent ('stop',), the server program was still running 10 s later. "
        "serve_forever() should return once it has answered the stop request: accept() only returns for a "
        "connection, so wake it up (for example by connecting to the server yourself), and do not wait for "
        "clients that are still connected." + server.output(),
    )
    expect(
        status == 0,
        f"After ('stop',) the server program should end with exit status 0; it ended with {status}." + server.output(),
    )
    expect(port_is_free(server.port), f"The server program has ended, but port {server.port} is still taken.")
    still_connected.close()


def test_start_serves_in_the_background_and_close_releases_the_port(kvstore):
    authkey = new_authkey()
    # A client's thread that has done its work may still be in its last lines: 2 s to end.
    with no_new_threads("KVServer(...).start(), a client, then close(),", ending=2.0):
        kv_server = call(
            kvstore.KVServer, ("127.0.0.1", 0), authkey, within=5, what="KVServer(('127.0.0.1', 0), authkey)"
        )
        address = kv_server.address
        expect(
            isinstance(address, tuple) and len(address) == 2 and address[1] != 0,
            f"server.address should be the address the server listens on, with its real port (the system picks "
            f"one for port 0); got {shown(address)}. The Listener's .address has it.",
        )
        call(kv_server.start, within=3, what="server.start()")
        with connect(kvstore, address, authkey) as kv:
            call(kv.put, "k", "v", within=5)
            expect(call(kv.get, "k", within=5) == "v", "A server started with start() should serve clients.")
        call(kv_server.close, within=10, what="server.close()")
    expect(
        port_is_free(address[1]),
        f"After close(), port {address[1]} was still taken: close the Listener, so "
        "that another server can listen there.",
    )


def test_two_servers_made_with_the_defaults_listen_on_free_loopback_ports(kvstore):
    servers = []
    try:
        with no_new_threads("two KVServer() started, used, then closed,", ending=2.0):
            for what in ("KVServer()", "a second KVServer(), while the first still listens"):
                try:
                    servers.append(call(kvstore.KVServer, within=5, what=what))
                    continue
                except OSError as error:
                    raised = shown(error)
                fail(
                    f"{what} raised {raised}. With the default address ('127.0.0.1', 0), port 0 means any free "
                    "port: the system gives each server a port of its own."
                )
            addresses = [server.address for server in servers]
            expect(
                all(isinstance(a, tuple) and len(a) == 2 and a[0] == HOST and a[1] != 0 for a in addresses)
                and addresses[0] != addresses[1],
                f"Two KVServer() made with the default address should listen on {HOST}, each on a free port of "
                f"its own; their addresses were {shown(addresses)}.",
            )
            for server in servers:
                call(server.start, within=3, what="server.start()")
                with connect(kvstore, server.address, kvstore.DEFAULT_AUTHKEY, "KVClient(server.address)") as kv:
                    call(kv.put, "k", server.address[1], within=5)
                    expect(
                        call(kv.get, "k", within=5) == server.address[1],
                        "Each server made with the defaults should serve clients that use the default authkey.",
                    )
            while servers:
                call(servers.pop().close, within=10, what="server.close()")
    finally:
        for server in servers:
            start(server.close, what="server.close()").wait(10)
