"""Public tests for topic 14. Run them with:  pytest exercises/14_message_passing

The hidden graders also run several clients at once, in processes of their own (a slow
client must not hold up the others; concurrent puts must all arrive), send malformed
requests, connect with a wrong authkey or none, and hang up in the middle of requests.
"""

from conclab.testing import ServerProgram, call, expect, fail, server_thread, start


def test_put_and_get_through_a_server_thread(kvstore):
    with server_thread(kvstore) as server:  # KVServer(("127.0.0.1", 0), authkey).start(), close() at the end
        with call(kvstore.KVClient, server.address, server.test_authkey, within=5) as kv:
            call(kv.put, "colour", "blue", within=5)
            got = call(kv.get, "colour", within=5)
            expect(got == "blue", f"After put('colour', 'blue'), get('colour') gave {got!r}.")


def test_a_missing_key_raises_keyerror(kvstore):
    with server_thread(kvstore) as server:
        with call(kvstore.KVClient, server.address, server.test_authkey, within=5) as kv:
            try:
                got = call(kv.get, "never stored", within=5)
            except KeyError:
                return
            fail(f"get('never stored') returned {got!r}; it should raise KeyError.")


def test_a_second_client_is_served_while_the_first_stays_connected(kvstore):
    with server_thread(kvstore) as server:
        with call(kvstore.KVClient, server.address, server.test_authkey, within=5) as first:
            call(first.put, "first", 1, within=5)
            second = start(kvstore.KVClient, server.address, server.test_authkey, what="a second KVClient(...)")
            if not second.wait(5):
                fail("While one client stayed connected, a second client could not even connect within 5 s: the "
                     "server serves one client at a time. Serve each client in a thread of its own, and go straight "
                     "back to accept().")
            with second.result() as kv:
                got = call(kv.get, "first", within=5)
                expect(got == 1, f"The second client should see what the first one put: get('first') gave {got!r}.")


def test_the_server_program_serves_and_stops(kvstore, tmp_path):
    with ServerProgram(kvstore, tmp_path) as server:  # python kvstore.py serve --port ... --authkey-file ...
        with call(kvstore.KVClient, server.address, server.authkey, within=5) as kv:
            call(kv.put, "answer", 42, within=5)
            expect(call(kv.get, "answer", within=5) == 42, "get('answer') should give 42 after put('answer', 42).")
            call(kv.stop, within=5)
        expect(server.wait_for_exit(10) == 0, "After stop(), the server program should end with exit status 0 "
               "within a few seconds." + server.output())
