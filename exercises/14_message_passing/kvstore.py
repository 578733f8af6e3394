"""Topic 14: message passing. A key-value store served by one program and used by others.

    python kvstore.py serve --port 6000 --authkey-file secret.key     (one terminal)
    python kvstore.py put colour blue --port 6000 --authkey-file secret.key   (another)
    python kvstore.py get colour --port 6000 --authkey-file secret.key
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import Any

DEFAULT_AUTHKEY = b"concurrency-lab"  # for trying things out; a real server reads a secret from a file
NO_SUCH_KEY = "no such key"  # how an error reply about a missing key begins


class KVServer:
    """A dict that clients reach through multiprocessing.connection, one thread per client."""

    def __init__(self, address: tuple[str, int] = ("127.0.0.1", 0), authkey: bytes = DEFAULT_AUTHKEY):
        # backlog: how many new connections may wait for accept() (one, unless you say otherwise).
        # authkey: every client must prove it knows the key before a request is read.
        self._listener = Listener(address, backlog=64, authkey=authkey)
        self.address: tuple[str, int] = self._listener.address  # the real port, when port 0 was asked for
        self._data: dict[Any, Any] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def serve_forever(self) -> None:
        """Accept clients until a stop request, and serve each one in a thread of its own."""
        while not self._stopping.is_set():
            # TODO: accept() raises AuthenticationError for a client with a wrong key, and EOFError
            #       or OSError for one that leaves during the handshake: catch them and go on.
            conn = self._listener.accept()  # also checks the client's authkey
            if self._stopping.is_set():
                conn.close()
                break
            # TODO: one client at a time: while this client is served, nobody else gets in. Serve
            #       it in a thread of its own (daemon=True), keep a list of those threads, and after
            #       the loop join each one for a second or so.
            self._serve_client(conn)

    def _serve_client(self, conn: Connection) -> None:
        """Answer one client's requests, in order, until it leaves or the server stops."""
        with conn:
            while not self._stopping.is_set():
                # TODO: conn.recv() waits for ever, even after a stop: wait with conn.poll(0.2) first,
                #       and look at self._stopping again when nothing came. recv() raises EOFError (or
                #       OSError) when the client has gone: return. Anything else it raises means bytes
                #       that are not a pickle: reply ("error", message) and go on. A send to a client
                #       that has gone raises OSError too.
                request = conn.recv()
                conn.send(self.handle(request))

    def handle(self, request: Any) -> tuple[str, Any]:
        """The reply to one request: ("ok", value_or_None) or ("error", message). Never raises."""
        # TODO: one case per request, under self._lock whenever the store is read or changed:
        #       ("get", key) -> ("ok", value), or ("error", f"{NO_SUCH_KEY}: {key!r}") if missing;
        #       ("put", key, value) -> ("ok", None);  ("delete", key) -> ("ok", None) or the same
        #       error;  ("stop",) -> self._stop(), then ("ok", None).  Anything else is malformed:
        #       reply ("error", message). `match request:` with `case ("get", key):` fits well.
        #       An unhashable key raises TypeError: reply with an error for that too.
        raise NotImplementedError("KVServer.handle")

    def _stop(self) -> None:
        """Stop serving: accept() only returns for a connection, so connect to wake it up."""
        self._stopping.set()
        try:
            socket.create_connection(self.address, timeout=1.0).close()
        except OSError:
            pass

    def start(self) -> None:
        """Serve in a background thread; returns at once."""
        self._thread = threading.Thread(target=self.serve_forever, name="kvstore-server", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving and release the port."""
        self._stop()
        if self._thread is not None:
            self._thread.join(5.0)
        self._listener.close()


class KVClient:
    """One connection to a KVServer. Not to be shared between threads: give each its own."""

    def __init__(self, address: tuple[str, int], authkey: bytes = DEFAULT_AUTHKEY):
        self._conn = Client(tuple(address), authkey=authkey)  # AuthenticationError if the key is wrong

    def _request(self, *request: Any) -> Any:
        """Send one request and wait for its reply: the value, or the error raised."""
        # TODO: send the request tuple, receive the reply. ("ok", value) gives the value; an error
        #       about a missing key (its message starts with NO_SUCH_KEY) raises KeyError(key); any
        #       other error raises RuntimeError(message).
        raise NotImplementedError("KVClient._request")

    def get(self, key: Any) -> Any:
        return self._request("get", key)

    def put(self, key: Any, value: Any) -> None:
        self._request("put", key, value)

    def delete(self, key: Any) -> None:
        self._request("delete", key)

    def stop(self) -> None:
        """Ask the server to stop."""
        self._request("stop")

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> KVClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _short(request: Any) -> str:
    text = repr(request)
    return text if len(text) <= 80 else text[:77] + "..."


# ------------------------------------------------------------------ the programs


def _read_authkey(parser: argparse.ArgumentParser, path: str) -> bytes:
    try:
        key = Path(path).read_bytes().strip()
    except OSError as error:
        parser.error(f"cannot read the authkey file: {error}")
    if not key:
        parser.error(f"the authkey file {path} is empty: put a secret in it")
    return key


def main(argv: list[str] | None = None) -> int:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--host", default="127.0.0.1")
    common.add_argument("--port", type=int, required=True)
    common.add_argument("--authkey-file", required=True, help="a file holding the shared secret")
    parser = argparse.ArgumentParser(prog="kvstore.py", description="A key-value store served over the network.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", parents=[common], help="run the server until a client asks it to stop")
    commands.add_parser("get", parents=[common]).add_argument("key")
    put = commands.add_parser("put", parents=[common])
    put.add_argument("key")
    put.add_argument("value")
    commands.add_parser("delete", parents=[common]).add_argument("key")
    commands.add_parser("stop", parents=[common], help="ask the server to stop")
    options = parser.parse_args(argv)
    authkey = _read_authkey(parser, options.authkey_file)
    address = (options.host, options.port)

    if options.command == "serve":
        server = KVServer(address, authkey)
        print(f"kvstore: serving on {server.address[0]}:{server.address[1]}", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.close()
        print("kvstore: stopped", flush=True)
        return 0

    try:
        with KVClient(address, authkey) as client:
            if options.command == "get":
                print(client.get(options.key))
            elif options.command == "put":
                client.put(options.key, options.value)
            elif options.command == "delete":
                client.delete(options.key)
            else:
                client.stop()
    except KeyError as error:
        print(f"kvstore: {NO_SUCH_KEY}: {error}", file=sys.stderr)
        return 1
    except (OSError, EOFError, AuthenticationError, RuntimeError) as error:
        print(f"kvstore: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
