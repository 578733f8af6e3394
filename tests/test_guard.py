"""The guard (core/guard.py) by itself, without the static pre-check in front of it: code that
got past the pre-check is refused at run time what no exercise needs, in the process and in
worker processes under every start method, while what multiprocessing does for it, and
what the standard library does for its own use, stays allowed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from conclab import manifest

ROOT = manifest.course_root()

# A grading process in miniature: the guard for a topic whose module is `mod` in the folder
# argv[1], that module imported, then `main()` of it called.
RUNNER = """
import multiprocessing, sys, tempfile
from conclab.core import guard

folder, log, method = sys.argv[1], sys.argv[2], sys.argv[3]
if method != "-":
    multiprocessing.set_start_method(method, force=True)
rules = guard.Rules(
    (guard.Module("mod", "mod.py", ("__future__", "threading", "time", "multiprocessing", "pathlib", "sys", "socket",
                                     "dataclasses", "typing", "collections", "concurrent.futures", "gc", "os", "signal",
                                     "subprocess", "pickle", "json", "linecache", "conclab.kit.vocabulary"), folder, "..."),),
    tempfile.gettempdir(),
    log,
)
guard.install(rules)
sys.path.append(folder)
if __name__ == "__main__":
    import mod
    try:
        mod.main()
    except PermissionError as exc:
        print("raised:", exc)
"""


def guarded(tmp_path: Path, body: str, method: str = "-") -> tuple[list[str], str]:
    folder = tmp_path / "student"
    folder.mkdir()
    (folder / "mod.py").write_text(textwrap.dedent(body), encoding="utf-8")
    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER, encoding="utf-8")
    log = tmp_path / "refusals.log"
    # the run's private temporary folder, as in grading (short: forkserver's socket lives there)
    scratch = Path(tempfile.mkdtemp(prefix="guard-"))
    done = subprocess.run(
        [sys.executable, str(runner), str(folder), str(log), method],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(scratch)},
    )
    shutil.rmtree(scratch, ignore_errors=True)
    lines = log.read_text().splitlines() if log.exists() else []
    return lines, done.stdout + done.stderr


REFUSED = {
    "the garbage collector's view": (
        "import gc\ndef main():\n    gc.get_objects()\n",
        "mod.py line 3 asks gc.get_objects(): graded code may not inspect the interpreter",
    ),
    "a frame from a traceback": (
        "def main():\n    try:\n        raise ValueError\n    except ValueError as e:\n        e.__traceback__.tb_frame\n",
        "the attribute tb_frame",
    ),
    "the caller's frame": ("import sys\ndef main():\n    sys._getframe(1)\n", "sys._getframe()"),
    "the solution, by path": (
        f"from pathlib import Path\ndef main():\n    Path({str(ROOT / 'solutions' / '01_threads' / 'threads.py')!r}).read_text()\n",
        "graded code may not read files outside its folder",
    ),
    "the graders' source": (
        f"def main():\n    open({str(ROOT / 'graders' / '01_threads' / 'test_threads.py')!r}).read()\n",
        "may not read files outside its folder",
    ),
    "writing a file": (
        "from pathlib import Path\ndef main():\n    Path('written.txt').write_text('x')\n",
        "graded code may not write files",
    ),
    "listing a folder": (
        "from pathlib import Path\ndef main():\n    list(Path('/').iterdir())\n",
        "may not look at files",
    ),
    "another program": ("import subprocess\ndef main():\n    subprocess.run(['true'])\n", "may not run other programs"),
    "a fork of its own": ("import os\ndef main():\n    os.fork()\n", "start processes with multiprocessing"),
    "a signal to its parent": ("import os, signal\ndef main():\n    os.kill(os.getppid(), 0)\n", "not its own child"),
    "the network": (
        "import socket\ndef main():\n    socket.create_connection(('192.0.2.1', 80), timeout=0.1)\n",
        "only loopback is allowed",
    ),
    "the environment": ("import os\ndef main():\n    os.environ['PYTHONPATH'] = '/tmp'\n", "environment variables"),
    "an import off the list": ("def main():\n    import csv\n", "imports csv, which this exercise does not use"),
    "code it makes": ("def main():\n    exec('x = 1')\n", "may not run code it makes or reads"),
    "a pickle that calls a function": (
        "import pickle\ndef main():\n    pickle.loads(b\"cbuiltins\\neval\\n(S'1'\\ntR.\")\n",
        "asks to unpickle builtins.eval",
    ),
    "a trace function": ("import sys\ndef main():\n    sys.settrace(lambda *a: None)\n", "sys.settrace()"),
    "a thread as a trampoline": (
        "import threading, time\n"
        "def main():\n"
        f"    t = threading.Thread(target=open, args=({str(ROOT / 'solutions' / '01_threads' / 'threads.py')!r},))\n"
        "    t.start(); t.join()\n",
        "(in a thread or process it started) asks to open",
    ),
    "a pool worker as a trampoline": (
        "import concurrent.futures\n"
        "def main():\n"
        "    with concurrent.futures.ThreadPoolExecutor(1) as pool:\n"
        "        pool.submit(open, '/etc/hostname').result()\n",
        "asks to open /etc/hostname",
    ),
    "a pool worker signalling its parent": (
        "import concurrent.futures, os\n"
        "def main():\n"
        "    with concurrent.futures.ThreadPoolExecutor(1) as pool:\n"
        "        pool.submit(os.kill, os.getppid(), 0).result()\n",
        "not its own child",
    ),
    "a process pool as a trampoline": (
        "import multiprocessing\n"
        "from pathlib import Path\n"
        "def main():\n"
        "    with multiprocessing.Pool(1) as pool:\n"
        "        pool.map(Path.read_text, [Path('/etc/hostname')])\n",
        "asks to open /etc/hostname",
    ),
    "a grader's own tool as a trampoline": (
        "import os\n"
        "from conclab.kit.vocabulary import Job\n"
        "def main():\n"
        "    Job(os.system, ('true',), what='x').wait(10)\n",
        "may not run other programs",
    ),
    "the graders read through linecache": (
        "import linecache\n"
        "def main():\n"
        f"    linecache.getlines({str(ROOT / 'graders' / '01_threads' / 'test_threads.py')!r})\n",
        "may not read files outside its folder",
    ),
    "linecache as a thread's target": (
        "import linecache, threading\n"
        "def main():\n"
        f"    t = threading.Thread(target=linecache.getlines, args=({str(ROOT / 'graders' / '01_threads' / 'test_threads.py')!r},))\n"
        "    t.start(); t.join()\n",
        "may not read files outside its folder",
    ),
    "a name that only starts like localhost": (
        "import socket\ndef main():\n    socket.create_connection(('localhost.example.com', 80), timeout=0.1)\n",
        "only loopback is allowed",
    ),
    "a pickle that names sys.modules": (
        "import pickle\ndef main():\n    pickle.loads(b'csys\\nmodules\\n.')\n",
        "asks to unpickle sys.modules",
    ),
    "a pickle that walks to a function's globals": (
        "import multiprocessing\n"
        "class Walk:\n"
        "    def __reduce__(self):\n"
        "        return (getattr, (main, '__globals__'))\n"
        "def main():\n"
        "    q = multiprocessing.Queue()\n"
        "    q.put(Walk())\n"
        "    q.get(timeout=30)\n",
        "asks to unpickle the attribute __globals__",
    ),
    "listening on every interface": (
        "import socket\ndef main():\n    socket.socket().bind(('', 0))\n",
        "only on this machine (loopback)",
    ),
}


@pytest.mark.parametrize("body, says", REFUSED.values(), ids=REFUSED.keys())
def test_what_no_exercise_needs_is_refused_and_kept(tmp_path, body, says):
    refusals, output = guarded(tmp_path, body)
    assert refusals, f"nothing was refused:\n{output}"
    assert says in refusals[0], refusals


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_the_guard_is_in_place_in_worker_processes(tmp_path, method):
    body = """
        import multiprocessing
        from pathlib import Path


        def peek(_):
            return Path("/etc/hostname").read_text()


        def main():
            with multiprocessing.Pool(2) as pool:
                try:
                    pool.map(peek, range(2))
                except PermissionError:
                    pass
        """
    refusals, output = guarded(tmp_path, body, method)
    assert any("asks to open /etc/hostname" in line for line in refusals), output


ALLOWED = {
    "threads, locks and a sleep": """
        import threading, time
        def main():
            lock = threading.Lock()
            t = threading.Thread(target=time.sleep, args=(0.01,))
            t.start(); t.join()
            with lock:
                pass
        """,
    "a dataclass, a namedtuple, a TypeVar": """
        import collections, dataclasses, typing
        T = typing.TypeVar("T")
        Point = collections.namedtuple("Point", "x y")
        @dataclasses.dataclass
        class Box:
            size: int = 1
        def main():
            Box(); Point(1, 2)
        """,
    "its own class changed, its own file read": """
        from pathlib import Path
        class Mine:
            pass
        def main():
            Mine.x = 1
            Path(__file__).read_text()
        """,
    "a pool, a queue, a shared value and a pipe": """
        import multiprocessing
        def square(x):
            return x * x
        def main():
            with multiprocessing.Pool(2) as pool:
                assert pool.map(square, range(4)) == [0, 1, 4, 9]
            value = multiprocessing.Value("i", 0)
            queue = multiprocessing.Queue()
            p = multiprocessing.Process(target=queue.put, args=(1,))
            p.start(); queue.get(); p.join()
            a, b = multiprocessing.Pipe()
            a.send([1, 2]); b.recv()
        """,
    "built-in functions sent to a pool": """
        import multiprocessing
        def main():
            with multiprocessing.Pool(2) as pool:
                assert pool.starmap(pow, [(2, 3), (3, 2)]) == [8, 9]
                assert pool.map(abs, [-1, 2]) == [1, 2]
                assert pool.map(str.upper, ["a"]) == ["A"]
        """,
    "a process pool of concurrent.futures": """
        import concurrent.futures
        def square(x):
            return x * x
        def main():
            with concurrent.futures.ProcessPoolExecutor(2) as pool:
                assert list(pool.map(square, range(4))) == [0, 1, 4, 9]
        """,
    "a loopback server": """
        import socket
        def main():
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0)); s.listen()
                with socket.create_connection(s.getsockname()):
                    pass
        """,
}


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
@pytest.mark.parametrize("body", ALLOWED.values(), ids=ALLOWED.keys())
def test_what_the_exercises_need_is_allowed(tmp_path, body, method):
    refusals, output = guarded(tmp_path, body, method)
    assert not refusals, output
    assert "Traceback" not in output, output


def test_every_place_the_guard_trusts_is_a_function_of_the_course():
    """A place of _DIRECT that names a course function no longer there would refuse the
    course's own call (a deadlock report read as the student's inspection)."""
    import ast

    from conclab.core import guard

    graders = Path(guard.__file__).resolve().parents[2]
    gone = []
    for places in guard._DIRECT.values():
        for place in places:
            path, _, name = place.partition(":")
            if not path.startswith("conclab/"):
                continue
            tree = ast.parse((graders / path).read_text(encoding="utf-8"))
            defined = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
            if name not in defined:
                gone.append(place)
    assert not gone, f"the guard trusts functions that are not there: {gone}"
