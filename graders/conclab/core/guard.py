"""A guard the code under test cannot take away: an audit hook (sys.addaudithook, which no
Python code can remove) and a watch on `import`, installed in a grading run before any
student code runs, and in every worker process multiprocessing starts for it before student
code runs there (fork inherits it; spawn and forkserver install it while unpickling the
process object, whose configuration carries the rules ahead of its target).

For what student code does, itself or through a library it calls, the guard refuses what no
exercise needs: inspecting the interpreter (frames, the garbage collector's view of objects,
trace functions, ctypes), reading files outside the grading folder and Python's own
libraries, writing, removing or listing files, running other programs, signalling processes
that are not its own children, network use other than loopback, changing the environment, unpickling anything but plain
data, exceptions and the exercise's own functions, and importing a module outside the topic's
list in the manifest.  (Replacing a grader's tool, a class or function of another module, is
found by the tools' check, engine/integrity.py, and refused at once by the pre-check.)

What multiprocessing and concurrent.futures do on the student's behalf (starting and
signalling their workers, their pipes, sockets, semaphores, shared memory and temporary
files) stays allowed: an event whose nearest frame of interest is theirs is judged by what
they need.  Who is acting is told by the stack: the nearest frame that is the student's
module, the course's (the package, the graders, pytest, pluggy) or multiprocessing's.

A refusal raises PermissionError where it happened and is kept (`refusals`, and a line in
the rules' log file for refusals in worker processes), so that the run fails the topic
however the student's code handles the error.
"""

from __future__ import annotations

import builtins
import importlib.util
import io
import os
import pickle
import sys
import sysconfig
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STUDENT, COURSE, HELPER, IMPORT, OTHER = "student", "course", "helper", "import", "other"


@dataclass(frozen=True)
class Module:
    name: str  # the topic's module, as the student names it (threads)
    filename: str  # its file (threads.py)
    imports: tuple[str, ...]  # the modules it may import
    folder: str  # the folder its file is in
    listed: str = ""  # those modules, as a message names them


@dataclass(frozen=True)
class Rules:
    modules: tuple[Module, ...]  # the topics' modules under test (one, when grading)
    scratch: str  # the run's private temporary folder
    log: str  # where refusals are written, one a line (for every process of the run)

    def fields(self) -> tuple:
        """The rules as plain data (for a worker process, or for a program's command line)."""
        modules = tuple((m.name, m.filename, tuple(m.imports), m.folder, m.listed) for m in self.modules)
        return modules, self.scratch, self.log

    @classmethod
    def of_fields(cls, modules, scratch: str, log: str) -> Rules:
        return cls(tuple(Module(n, f, tuple(i), d, listed) for n, f, i, d, listed in modules), scratch, log)

    def __reduce__(self):  # a worker process started by spawn or forkserver installs it first
        return (_install_in_worker, self.fields())

    def of_file(self, path: str) -> Module | None:
        """The topic module whose file this is (only the module itself is the student's: public
        tests may sit beside it)."""
        for module in self.modules:
            if path == os.path.join(module.folder, module.filename):
                return module
        return None


def _install_in_worker(modules: tuple, scratch: str, log: str) -> Rules:
    rules = Rules.of_fields(modules, scratch, log)
    install(rules)
    return rules


class Refused(PermissionError):
    """What the guard raises where it refused something."""


refusals: list[str] = []
_rules: Rules | None = None
_inside = threading.local()
_original_import = builtins.__import__

_here = Path(__file__).resolve()
_COURSE_DIRS = [str(_here.parents[2])]  # graders/: the package and the graders
for _name in ("_pytest", "pluggy", "pytest"):
    _module = sys.modules.get(_name)
    if _module is not None and getattr(_module, "__file__", None):
        _COURSE_DIRS.append(str(Path(_module.__file__).resolve().parent))
_STDLIB = {str(Path(sysconfig.get_paths()[key]).resolve()) for key in ("stdlib", "platstdlib")}
_LIBRARIES = _STDLIB | {str(Path(sysconfig.get_paths()[key]).resolve()) for key in ("purelib", "platlib")}
_LIBRARIES |= {str(Path(p).resolve()) for p in sys.path if "site-packages" in p or "dist-packages" in p}
_HELPER_DIRS = [os.path.join(d, "multiprocessing") for d in _STDLIB] + [
    os.path.join(d, "concurrent", "futures") for d in _STDLIB
]
# Standard modules that look at a frame or a code object for their own use (a traceback's lines, a
# TypeVar's module, a namedtuple's module, a signature) and give the student's code nothing of it.
_FRAME_READERS = {
    os.path.join(d, name)
    for d in _STDLIB
    for name in (
        "traceback.py",
        "linecache.py",
        "tokenize.py",
        "inspect.py",
        "typing.py",
        "enum.py",
        "warnings.py",
        "dataclasses.py",
        os.path.join("collections", "__init__.py"),
        os.path.join("logging", "__init__.py"),
    )
}
_GUARD_FILE = __file__
_kinds: dict[str, str] = {}
_places: dict[str, str] = {}


def _under(path: str, folders) -> bool:
    return any(path == f or path.startswith(f + os.sep) for f in folders)


def _kind(filename: str) -> str:
    kind = _kinds.get(filename)
    if kind is None:
        path = os.path.abspath(filename) if not filename.startswith("<") else filename
        if _rules is not None and _rules.of_file(path) is not None:
            kind = STUDENT
        elif filename.startswith("<frozen importlib"):
            kind = IMPORT
        elif path == str(_here):
            kind = OTHER  # the guard's own frames (its watch on import) act for no one
        elif _under(path, _HELPER_DIRS):
            kind = HELPER
        elif _under(path, _COURSE_DIRS):
            kind = COURSE
        else:
            kind = OTHER
        _kinds[filename] = kind
    return kind


def _place(frame) -> str:
    """Where a frame is, as the allowances below name it: 'conclab/core/machine.py:_open',
    '_pytest/main.py:wrap_session', 'multiprocessing/popen_fork.py:_launch'."""
    filename = frame.f_code.co_filename
    relative = _places.get(filename)
    if relative is None:
        path = os.path.abspath(filename)
        relative = path
        roots = (*_LIBRARIES, *_COURSE_DIRS[:1], *(os.path.dirname(d) for d in _COURSE_DIRS[1:]))
        for folder in sorted(roots, key=len, reverse=True):  # the nearest: site-packages before the stdlib
            if _under(path, (folder,)):
                relative = os.path.relpath(path, folder).replace(os.sep, "/")
                break
        _places[filename] = relative
    return f"{relative}:{frame.f_code.co_name}"


# Places that call a callable they were handed (a process's target, a pool's or an executor's
# task, a Job's function): what that callable does is done for whoever handed it over, which,
# when no frame of the course's or of multiprocessing's own comes between, is the student.
_DISPATCH = {
    "multiprocessing/process.py:run",
    "multiprocessing/pool.py:worker",
    "multiprocessing/pool.py:mapstar",
    "multiprocessing/pool.py:starmapstar",
    "multiprocessing/util.py:__call__",
    "multiprocessing/managers.py:serve_client",
    "concurrent/futures/thread.py:run",
    "concurrent/futures/process.py:_process_worker",
    "concurrent/futures/process.py:_process_chunk",
    "concurrent/futures/process.py:<listcomp>",
    "concurrent/futures/_base.py:_invoke_callbacks",
    "concurrent/futures/_base.py:add_done_callback",
    "conclab/kit/vocabulary.py:body",
    "conclab/kit/messaging.py:_call",
}


def _actor(frame, past_imports: bool = False) -> tuple[str, Any, Any]:
    """Who is acting: the kind of the nearest frame that is not OTHER (the standard library and
    other libraries act for whoever called them), that frame, and the student's nearest frame
    (for the message), if any.  A stack with none of them is the student's (a thread or a
    clean-up started from its code, running a library function), and so is one whose nearest
    such frame calls a callable it was handed (_DISPATCH).  With `past_imports`, an import acts
    for whoever asked for it."""
    student = agent = None
    kind = None
    while frame is not None:
        this = _kind(frame.f_code.co_filename)
        if this == STUDENT and student is None:
            student = frame
        if kind is None and this in (COURSE, HELPER) and _place(frame) in _DISPATCH:
            kind, agent = STUDENT, None
        if kind is None and this != OTHER and not (past_imports and this == IMPORT):
            kind, agent = this, frame
        if kind is not None and (student is not None or kind != STUDENT):
            break
        frame = frame.f_back
    return kind or STUDENT, agent, student


# Events refused to the student's code and to the helpers alike: looking inside the
# interpreter, and running other programs.
_INSPECT = {
    "gc.get_objects": "gc.get_objects()",
    "gc.get_referrers": "gc.get_referrers()",
    "gc.get_referents": "gc.get_referents()",
    "sys._getframe": "sys._getframe()",
    "sys._getframemodulename": "sys._getframemodulename()",
    "sys._current_frames": "sys._current_frames()",
    "sys._current_exceptions": "sys._current_exceptions()",
    "sys.addaudithook": "sys.addaudithook()",
    "sys.monitoring.register_callback": "sys.monitoring",
    "cpython._PySys_ClearAuditHooks": "to clear the audit hooks",
    "function.__new__": "a function made from a code object",
    "code.__new__": "a code object",
    "object.__getattr__": "an interpreter attribute",
    "ctypes.dlopen": "ctypes",
    "ctypes.dlsym": "ctypes",
    "ctypes.string_at": "ctypes",
    "ctypes.wstring_at": "ctypes",
    "ctypes.addressof": "ctypes",
    "ctypes.call_function": "ctypes",
    "ctypes.cdata": "ctypes",
    "ctypes.get_errno": "ctypes",
    "ctypes.set_errno": "ctypes",
    "ctypes.seh_exception": "ctypes",
}
_PROGRAMS = {
    "subprocess.Popen": "to run another program",
    "os.system": "to run another program",
    "os.exec": "to run another program",
    "os.posix_spawn": "to run another program",
    "os.spawn": "to run another program",
    "os.startfile": "to run another program",
    "pty.spawn": "to run another program",
    "os.forkpty": "to start a process",
}
_FILES = {
    "os.remove": "to remove a file",
    "os.rename": "to rename a file",
    "os.rmdir": "to remove a folder",
    "os.mkdir": "to make a folder",
    "os.chmod": "to change a file's permissions",
    "os.chown": "to change a file's owner",
    "os.chflags": "to change a file's flags",
    "os.lchflags": "to change a file's flags",
    "os.link": "to link a file",
    "os.symlink": "to link a file",
    "os.truncate": "to change a file",
    "os.utime": "to change a file",
    "os.setxattr": "to change a file",
    "os.removexattr": "to change a file",
    "shutil.rmtree": "to remove a folder",
    "shutil.copyfile": "to copy a file",
    "shutil.move": "to move a file",
    "tempfile.mkstemp": "to make a file",
    "tempfile.mkdtemp": "to make a folder",
    "os.chdir": "to change the working folder",
}
_LISTING = {"os.listdir", "os.scandir", "glob.glob", "glob.glob/2", "os.fwalk"}
_SIGNALS = {"os.kill", "os.killpg", "signal.pthread_kill"}
_NETWORK = {"socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg"}
_NAMES = {"socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr", "socket.gethostbyname_ex"}
_ENVIRONMENT = {"os.putenv", "os.unsetenv"}
_CODE = {"exec", "compile"}
# Judged by the frame that calls them: the standard library asks them for its own use (typing,
# enum and warnings look at their caller's frame, traceback reads a traceback's frames), and
# what it does with the answer never reaches the student's code.
_OWN_CALLS = {
    "sys._getframe",
    "sys._getframemodulename",
    "object.__getattr__",
    "object.__setattr__",
    "object.__delattr__",
}
_WATCHED = (
    set(_INSPECT)
    | set(_PROGRAMS)
    | set(_FILES)
    | _LISTING
    | _SIGNALS
    | _NETWORK
    | _NAMES
    | _ENVIRONMENT
    | _CODE
    | {"open", "os.fork", "sys.settrace", "sys.setprofile", "pickle.find_class"}
)
# A C function called straight from the course's or multiprocessing's own code (no library
# between them) is one of these places' own calls only where listed here: anywhere else, it may
# be a callable the student's code handed over (to a grader, to a Job, to a pool), and is judged
# as the student's.  Events not listed are judged by their arguments alone (reading, loopback).
_DIRECT = {
    "inspect": {
        "conclab/core/cleanup.py:inject",
        "conclab/core/cleanup.py:close_pools",
        "conclab/core/diagnose.py:describe",
        "conclab/core/diagnose.py:report",
        "conclab/kit/locks.py:_circle_lines",
        "conclab/kit/vocabulary.py:stuck_report",
        "conclab/engine/chaos.py:start",
        "conclab/engine/chaos.py:stop",
        "multiprocessing/sharedctypes.py:RawValue",
        "multiprocessing/sharedctypes.py:RawArray",
        "multiprocessing/sharedctypes.py:rebuild_ctype",
        "multiprocessing/sharedctypes.py:_new_value",
    },
    "code": {
        "_pytest/assertion/rewrite.py:exec_module",
        "_pytest/mark/expression.py:evaluate",
        "_pytest/skipping.py:evaluate_condition",
        "multiprocessing/sharedctypes.py:make_property",
    },
    "fork": {"multiprocessing/popen_fork.py:_launch"},
    "signal": {"multiprocessing/popen_fork.py:_send_signal"},
    "files": {
        "multiprocessing/heap.py:__init__",
        "multiprocessing/forkserver.py:ensure_running",
        "_pytest/main.py:wrap_session",
        "_pytest/pathlib.py:scandir",
        "_pytest/pathlib.py:find_prefixed",
    },
    "write": {
        "multiprocessing/popen_forkserver.py:_launch",
        "multiprocessing/popen_spawn_posix.py:_launch",
        "multiprocessing/util.py:_close_stdin",
    },
    "network": {
        "multiprocessing/forkserver.py:ensure_running",
        "multiprocessing/forkserver.py:connect_to_new_process",
        "multiprocessing/connection.py:SocketClient",
        "multiprocessing/connection.py:__init__",
        "multiprocessing/reduction.py:sendfds",
    },
}
# What the course's code may run as another program: the student's own module, as topic 14's
# server program (under the guard: see program_command).
_PROGRAM_RUNNERS = ("conclab/kit/messaging.py:",)


def _direct(group: str, agent) -> bool:
    return _place(agent) in _DIRECT.get(group, ())


def _loopback(host: Any) -> bool:
    """An address of this machine's loopback interface, by number or by the name localhost."""
    if not isinstance(host, str):
        return False
    if host == "localhost":
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _writes(mode: Any, flags: Any) -> bool:
    if isinstance(mode, str) and any(c in mode for c in "wax+"):
        return True
    return isinstance(flags, int) and bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC))


def _readable(path: str) -> bool:
    """A file the student's code may read: its own, the run's temporary files, Python's libraries."""
    assert _rules is not None
    real = os.path.realpath(path)
    if _under(real, _COURSE_DIRS[:1]):
        return False
    folders = [m.folder for m in _rules.modules]
    return _under(real, (*folders, _rules.scratch, *_LIBRARIES)) or real in (
        os.devnull,
        "/dev/urandom",
        "/dev/random",
    )


def _course_readable(path: str) -> bool:
    """A file the course's code may read: those, the course it grades with, pytest's, the lock
    folder, and what the system says about processes and CPUs (/proc, /sys)."""
    assert _rules is not None
    if path.startswith(("/proc/", "/sys/")) and ".." not in path:
        return True  # psutil, thousands of times a run: no need to resolve it
    real = os.path.realpath(path)
    roots = (os.path.dirname(_COURSE_DIRS[0]), *_COURSE_DIRS[1:], _locks(), "/proc", "/sys", "/dev")
    return _under(real, roots) or _readable(path)


def _course_source(path: str) -> bool:
    """A file of the course's package or graders (a traceback in a worker shows its lines)."""
    return _under(os.path.realpath(path), _COURSE_DIRS)


def _bytecode(path: str) -> bool:
    """A bytecode cache (a __pycache__ folder, or a file in one)."""
    return "__pycache__" in Path(path).parts


def _locks() -> str:
    from conclab.core import machine

    return os.path.realpath(machine.folder())


def _scratch(path: Any) -> bool:
    """A path in the run's private temporary folder or in shared memory (multiprocessing's)."""
    assert _rules is not None
    if not isinstance(path, (str, bytes, os.PathLike)):
        return False
    real = os.path.realpath(os.fsdecode(path))
    return _under(real, (_rules.scratch, "/dev/shm"))


def _relative(args: tuple) -> bool:
    """A name in a folder opened before (shutil.rmtree removes what is in it by dir_fd)."""
    return len(args) > 1 and isinstance(args[-1], int) and args[-1] >= 0 and not os.path.isabs(os.fsdecode(args[0]))


def _own_child(pid: Any) -> bool:
    """A process below this one (a child, or a child's child: a forkserver's workers)."""
    if not isinstance(pid, int) or pid <= 0 or pid == os.getpid():
        return False
    try:
        import psutil

        return any(p.pid == pid for p in psutil.Process().children(recursive=True))
    except Exception:
        return False


def _may_signal(pid: Any) -> bool:
    """A process below this one, or none at all (an ended one: nothing is signalled)."""
    if _own_child(pid):
        return True
    try:
        import psutil

        return isinstance(pid, int) and pid > 0 and not psutil.pid_exists(pid)
    except Exception:
        return False


# Of multiprocessing's and concurrent.futures' functions, those their own pickles name: how
# they rebuild a connection, a socket, a shared value, an error, and how a pool calls a task.
_REBUILDERS = {"mapstar", "starmapstar", "_process_chunk", "_rebuild_partial", "RebuildProxy"}
# and what of theirs a pickle never names: the classes that start a process, the modules that
# start servers and programs
_NEVER_PICKLED = {"forkserver", "resource_tracker", "spawn", "util"}
# Built-in functions that do something beyond computing a value from their arguments.
_UNSAFE_BUILTINS = frozenset(
    "eval exec compile open input breakpoint __import__ __build_class__ globals locals vars dir help exit quit "
    "copyright credits license setattr delattr memoryview".split()
)


_UNSEEN = object()


def _unpicklable(module: str, name: str, value: Any = _UNSEEN) -> bool:
    """What unpickling may look up: of the exercise's module and the modules it may import, the
    graders' workers and multiprocessing's own rebuilding of its objects, classes and functions
    only (never a module, nor an object such as sys.modules); exceptions; plain built-ins.  By
    name before the module is imported, and by `value` too once it is known."""
    assert _rules is not None
    if value is _UNSEEN and "." not in name:
        value = getattr(sys.modules.get(module), name, _UNSEEN)
    if value is not _UNSEEN:
        if type(value) is type(sys):
            return False
        if isinstance(value, type) and issubclass(value, BaseException):
            return True  # an error raised in a worker, sent back to be raised again
    own = any(module == m.name for m in _rules.modules)
    if value is not _UNSEEN and not own and not (isinstance(value, type) or _is_function(value)):
        return False  # an object of another module's (sys.modules, sys.stdout)
    if own:
        return True
    if module == "builtins":
        return name not in _UNSAFE_BUILTINS and (value is _UNSEEN or _is_function(value) or isinstance(value, type))
    top, _, rest = module.partition(".")
    if top in ("multiprocessing", "concurrent"):
        if rest.split(".")[-1] in _NEVER_PICKLED or name == "Popen":
            return False
        return "rebuild" in name or name in _REBUILDERS or value is _UNSEEN or isinstance(value, type)
    if module == "ctypes":
        return name.startswith("c_")  # the types of multiprocessing's shared values
    if module == "conclab.core.guard":
        return name in ("_install_in_worker", "Refused")
    if module == "sys":
        return False
    if any(module in m.imports for m in _rules.modules):
        return not name.startswith("_")
    return module in (
        "conclab.kit.workers",
        "conclab.kit.messaging",
        "collections",
        "copyreg",
        "datetime",
        "decimal",
        "fractions",
        "functools",
    )


_judged_names: dict[tuple[str, str], bool] = {}


def _unpicklable_name(module: str, name: str) -> bool:
    """_unpicklable for a name whose module is imported, remembered (the rules do not change)."""
    key = (module, name)
    known = _judged_names.get(key)
    if known is None:
        if module not in sys.modules:
            return False  # judged in full, once it is imported
        known = _judged_names[key] = _unpicklable(module, name)
    return known


def _is_function(value: Any) -> bool:
    return type(value).__name__ in ("function", "builtin_function_or_method", "method_descriptor")


class _GuardedUnpickler(pickle.Unpickler):
    """multiprocessing's unpickling here: every name is judged as the audit hook judges it (the
    hook does not see lookups made from the guard's own frames), and `getattr`, which a pickle
    uses to name a bound method, hands out no dunder attribute (a function's __globals__, a
    class's __subclasses__)."""

    def find_class(self, module, name):
        known = _unpicklable_name(str(module), str(name))  # judged before, by name and value
        if not known and not _unpicklable(str(module), str(name)):
            self._refuse(module, name)
        value = super().find_class(module, name)
        if not known and not _unpicklable(str(module), str(name), value):
            self._refuse(module, name)
        return _pickled_getattr if value is getattr else value

    @staticmethod
    def _refuse(module, name) -> None:
        _, _, student = _actor(sys._getframe(2))
        _refuse(
            f"asks to unpickle {module}.{name}: graded code may send plain data and its own functions only", student
        )


def _pickled_getattr(obj, name, *default):
    if not isinstance(name, str) or (name.startswith("__") and name.endswith("__")):
        _, _, student = _actor(sys._getframe(1))
        _refuse(f"asks to unpickle the attribute {str(name)[:40]}: graded code may send plain data only", student)
    return getattr(obj, name, *default)


def _guarded_loads(data, /, *, fix_imports=True, encoding="ASCII", errors="strict", buffers=()):
    return _GuardedUnpickler(
        io.BytesIO(data), fix_imports=fix_imports, encoding=encoding, errors=errors, buffers=buffers
    ).load()


def _group(event: str) -> str:
    if event in _INSPECT or event in ("sys.settrace", "sys.setprofile"):
        return "inspect"
    if event in _CODE:
        return "code"
    if event in _PROGRAMS:
        return "programs"
    if event == "os.fork":
        return "fork"
    if event in _SIGNALS:
        return "signal"
    if event in _FILES or event in _LISTING:
        return "files"
    if event == "open":
        return "write"
    if event in _NETWORK or event in _NAMES:
        return "network"
    return "other"


# Code that makes code of its own (a dataclass's methods, a namedtuple) and runs it.
_CODE_MAKERS = {
    os.path.join(d, name) for d in _STDLIB for name in ("dataclasses.py", os.path.join("collections", "__init__.py"))
}


def _imports(event: str, args: tuple) -> bool:
    """What an import does on its own: runs and compiles the module's code, reads its files,
    lists the folders it looks in, caches bytecode in __pycache__, loads a C library."""
    if event in ("exec", "compile", "os.listdir", "os.scandir", "ctypes.dlopen", "ctypes.dlsym"):
        return True
    if event == "open":
        path, mode, flags = (list(args) + [None, None, None])[:3]
        if isinstance(path, int):
            return True  # the file it has just opened for its bytecode cache
        return not _writes(mode, flags) or _bytecode(os.fsdecode(path))
    if event in ("os.mkdir", "os.rename", "os.remove"):
        return bool(args) and isinstance(args[0], (str, bytes, os.PathLike)) and _bytecode(os.fsdecode(args[0]))
    return False


_TRACEBACK_FILES = {os.path.join(d, n) for d in _STDLIB for n in ("traceback.py", "linecache.py", "tokenize.py")}
_THREADING_FILES = {os.path.join(d, "threading.py") for d in _STDLIB}


def _shows_a_traceback(frame, args: tuple) -> bool:
    """A source file read to show a traceback that no student code asked for: threading's
    excepthook printing what ended a thread, or the traceback module called by the course's or
    multiprocessing's own code (a thread's target, threading's `run`, is the student's call,
    and so is a callable a pool or a Job calls, and a call from the student's code)."""
    path, mode, flags = (list(args) + [None, None, None])[:3]
    if not isinstance(path, (str, bytes, os.PathLike)) or _writes(mode, flags):
        return False
    path = os.fsdecode(path)
    if not path.endswith(".py") or not (_course_source(path) or _under(os.path.realpath(path), _LIBRARIES)):
        return False
    seen_excepthook = seen_traceback = False
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if filename in _THREADING_FILES and frame.f_code.co_name != "run":
            seen_excepthook = seen_excepthook or frame.f_code.co_name in ("invoke_excepthook", "excepthook")
        elif filename in _TRACEBACK_FILES:
            seen_traceback = True
        else:  # who asked for the traceback: the course's or multiprocessing's own code, for itself
            return seen_traceback and _kind(filename) in (COURSE, HELPER) and _place(frame) not in _DISPATCH
        frame = frame.f_back
    return seen_excepthook


def _judge(event: str, args: tuple, frame) -> tuple[str | None, Any]:
    """What is refused (None: allowed), and the frame a refusal names."""
    kind, agent, student = _actor(frame)
    if kind == IMPORT:
        if _imports(event, args):
            return None, None
        kind, agent, student = _actor(frame, past_imports=True)
    if kind == STUDENT and event == "open" and _shows_a_traceback(frame, args):
        return None, None
    group = _group(event)
    direct = agent is frame  # a C function called by the agent's own code, no library between
    if direct and kind == HELPER and event != "pickle.find_class" and not _direct(group, agent):
        kind = STUDENT  # a callable the student handed to a worker, a pool or a future
    if direct and kind == COURSE and group in ("inspect", "code", "programs", "fork") and not _direct(group, agent):
        kind = STUDENT  # a callable the student handed to a grader or a Job
    return _verdict(event, args, kind, agent), student


def _verdict(event: str, args: tuple, actor: str, agent) -> str | None:
    """What is refused ("" or None: allowed), `actor` acting in the frame `agent`."""
    if event in _INSPECT or event in ("sys.settrace", "sys.setprofile"):
        if actor == COURSE:
            return None
        if actor == HELPER and (event in _OWN_CALLS or event.startswith("ctypes.")):
            return None  # multiprocessing's shared values
        what = _INSPECT.get(event, f"{event}()")
        if event == "object.__getattr__" and len(args) > 1:
            what = f"the attribute {args[1]}"
        if event in ("sys.settrace", "sys.setprofile"):
            return f"asks {event}(): graded code may not trace the interpreter"
        return f"asks {what}: graded code may not inspect the interpreter or the graders"
    if event in _CODE:
        if actor in (COURSE, HELPER):
            return None
        return f"asks {event}(): graded code may not run code it makes or reads"
    if event in _PROGRAMS:
        if actor == COURSE and agent is not None and _place(agent).startswith(_PROGRAM_RUNNERS):
            return None
        return f"asks {_PROGRAMS[event]}: graded code may not run other programs"
    if event == "os.fork":
        return None if actor == HELPER else "asks os.fork(): start processes with multiprocessing"
    if event == "open":
        path, mode, flags = (list(args) + [None, None, None])[:3]
        if isinstance(path, int):
            if actor in (COURSE, HELPER) or not _writes(mode, flags) or path in (1, 2):
                return None
            return "asks to write to a file descriptor: graded code may not write files"
        path = os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else str(path)
        if _writes(mode, flags):
            if actor in (COURSE, HELPER) and (_scratch(path) or os.path.realpath(path) == os.devnull):
                return None
            if actor == COURSE and _bytecode(path):
                return None  # pytest's rewritten graders, cached
            if actor == COURSE and _under(os.path.realpath(path), (_locks(),)):
                return None
            return f"asks to write {path}: graded code may not write files"
        if path.startswith("<") and not os.path.exists(path):
            return None  # no file: Python 3.13's ast.parse of a traceback's source line says "<unknown>"
        if actor == COURSE and _course_readable(path):
            return None
        if actor == HELPER and (_scratch(path) or path.startswith(f"/proc/{os.getpid()}/") or _course_source(path)):
            return None
        return None if _readable(path) else f"asks to open {path}: graded code may not read files outside its folder"
    if event in _FILES:
        if actor in (COURSE, HELPER) and (
            not args or isinstance(args[0], int) or _scratch(args[0]) or _relative(args) or event == "os.chdir"
        ):
            return None
        if actor == COURSE and args and isinstance(args[0], (str, bytes, os.PathLike)):
            if _under(os.path.realpath(os.fsdecode(args[0])), (_locks(),)) or _bytecode(os.fsdecode(args[0])):
                return None
        return f"asks {_FILES[event]}: graded code may not change files"
    if event in _LISTING:
        path = args[0] if args else "."
        if isinstance(path, int) and actor in (COURSE, HELPER):
            return None
        if isinstance(path, (str, bytes, os.PathLike)):
            path = os.fsdecode(path)
            if actor == COURSE and _course_readable(path):
                return None
            if actor == HELPER and _scratch(path):
                return None
            if _readable(path):
                return None
        return f"asks to list the folder {path}: graded code may not look at files outside its folder"
    if event in _SIGNALS:
        pid = args[0] if args else None
        if event == "signal.pthread_kill":
            return None if actor == COURSE else "asks to signal a thread: graded code may not send signals"
        return None if _may_signal(pid) else f"asks to signal process {pid}, which is not its own child"
    if event in _NETWORK:
        address = args[1] if len(args) > 1 else None
        if isinstance(address, tuple) and address and _loopback(address[0]):
            return None
        if address is None:
            return None
        if isinstance(address, (str, bytes)) and (not address or address[:1] in ("\0", b"\0") or _scratch(address)):
            return None  # a Unix socket: unnamed, abstract, or in the run's own folder (multiprocessing's)
        return f"asks to connect to {address!r}: graded code may use the network only on this machine (loopback)"
    if event in _NAMES:
        host = args[0] if args else None
        return None if _loopback(host) or host is None else f"asks to look up {host!r}: only loopback is allowed"
    if event in _ENVIRONMENT:
        if actor == COURSE:
            return None
        return "asks to change the environment: graded code may not change environment variables"
    if event == "pickle.find_class":
        module, name = (list(args) + ["", ""])[:2]
        if _unpicklable(str(module), str(name)):
            return None
        return f"asks to unpickle {module}.{name}: graded code may send plain data and its own functions only"
    return None


def _hook(event: str, args: tuple) -> None:
    if event not in _WATCHED or _rules is None or getattr(_inside, "active", False):
        return
    _inside.active = True
    try:
        frame = sys._getframe(1)
        if frame.f_code.co_filename == _GUARD_FILE:
            return  # the guard's own calls (its watch on import looks at its caller)
        if event in _OWN_CALLS and (
            _kind(frame.f_code.co_filename) in (COURSE, HELPER, IMPORT)
            or os.path.abspath(frame.f_code.co_filename) in _FRAME_READERS
        ):
            return  # a library looking at its caller's frame or a function's code for its own use
        if event == "compile" and _kind(frame.f_code.co_filename) != STUDENT:
            return  # compiling runs nothing; running what was compiled is judged (exec)
        if event == "exec":
            code = args[0] if args else None
            filename = os.path.abspath(str(getattr(code, "co_filename", "")))
            if _under(filename, _LIBRARIES) and not _under(filename, _COURSE_DIRS[:1]):
                return  # a library's own module code
            if _kind(frame.f_code.co_filename) != STUDENT and os.path.abspath(frame.f_code.co_filename) in _CODE_MAKERS:
                return  # a dataclass's methods, a namedtuple
        if event in ("sys.settrace", "sys.setprofile"):
            # a new thread takes the trace and profile functions threading holds: the graders'
            # own, or those there were before the guard (a coverage tool's)
            if frame.f_code.co_name == "_bootstrap_inner" and _known_hooks():
                return
            current = sys.gettrace() if event == "sys.settrace" else sys.getprofile()
            if current is not None and _known(current, None):
                return  # the graders' trace function is being taken away (Python does so when it raises)
        if event == "pickle.find_class" and len(args) > 1 and _unpicklable_name(str(args[0]), str(args[1])):
            return  # judged the same for every actor, and asked thousands of times a run
        refused, student = _judge(event, args, frame)
        if refused:
            _refuse(refused, student or frame)
    finally:
        _inside.active = False


_hooks_before: tuple[Any, Any] = (None, None)


def _known(hook: Any, before: Any) -> bool:
    """None, the hook there was before the guard, or one of the graders' own."""
    function = getattr(hook, "__func__", hook)
    return hook is None or hook is before or str(getattr(function, "__module__", "")).startswith("conclab.")


def _known_hooks() -> bool:
    trace, profile = getattr(threading, "_trace_hook", None), getattr(threading, "_profile_hook", None)
    return _known(trace, _hooks_before[0]) and _known(profile, _hooks_before[1])


def _refuse(what: str, frame) -> None:
    assert _rules is not None
    if frame is not None and _kind(frame.f_code.co_filename) == STUDENT:
        where = f"{Path(frame.f_code.co_filename).name} line {frame.f_lineno}"
    else:  # in a thread or process its code started, running a library's code
        where = f"{_rules.modules[0].filename} (in a thread or process it started)"
    message = f"{where} {what}."
    note(message)
    raise Refused(message)


def note(message: str) -> None:
    """Keep a refusal (the guard's, or the static pre-check's) for the run and its parent."""
    assert _rules is not None
    if os.environ.get("CONCLAB_GUARD_DEBUG"):
        import traceback

        message += " | " + " <- ".join(
            f"{Path(f.filename).name}:{f.lineno}:{f.name}"
            for f in reversed(traceback.extract_stack(sys._getframe(1))[-12:])
        )
    if message not in refusals:
        refusals.append(message)
        try:
            fd = os.open(_rules.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, (message.replace("\n", " ") + "\n").encode("utf-8", "replace"))
            finally:
                os.close(fd)
        except OSError:
            pass


def _allowed_module(name: str, module: Module) -> bool:
    return name in module.imports or name == "__future__"


def _guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
    rules = _rules
    if rules is None or getattr(_inside, "active", False):
        return _original_import(name, globals, locals, fromlist, level)
    caller = globals
    if caller is None:
        caller = sys._getframe(1).f_globals
    filename = caller.get("__file__") if isinstance(caller, dict) else None
    if not filename or _kind(filename) != STUDENT:
        return _original_import(name, globals, locals, fromlist, level)
    frame = sys._getframe(1)
    topic = rules.of_file(os.path.abspath(filename))
    assert topic is not None
    if level:
        _refuse_import(f"asks a relative import (from .{name} import ...): import modules by their full names", frame)
    if not _allowed_module(name, topic) and _exists(name):  # a module that is not there cannot harm
        _refuse_import(_not_listed(name, topic), frame)
    module = _original_import(name, globals, locals, fromlist, level)
    for item in fromlist or ():
        value = getattr(module, item, None)
        if type(value) is type(sys) and not _allowed_module(value.__name__, topic):
            _refuse_import(_not_listed(value.__name__, topic), frame)
    return module


def _exists(name: str) -> bool:
    _inside.active = True
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
    finally:
        _inside.active = False


def _not_listed(name: str, topic: Module) -> str:
    return f"imports {name}, which this exercise does not use (it may import {topic.listed})"


def _refuse_import(what: str, frame) -> None:
    _inside.active = True
    try:
        _refuse(what, frame)
    finally:
        _inside.active = False


def install(rules: Rules) -> None:
    """Put the guard in place in this process (once; later calls change nothing)."""
    global _rules, _hooks_before
    if _rules is not None:
        return
    _hooks_before = (getattr(threading, "_trace_hook", None), getattr(threading, "_profile_hook", None))
    _rules = rules
    _kinds.clear()
    sys.addaudithook(_hook)
    builtins.__import__ = _guarded_import
    try:
        import multiprocessing
        from multiprocessing import reduction

        multiprocessing.current_process()._config["conclab_guard"] = rules  # carried to spawned workers
        reduction.ForkingPickler.loads = staticmethod(_guarded_loads)  # what workers and pipes send
    except Exception:  # pragma: no cover - multiprocessing is always there
        pass


def installed() -> Rules | None:
    return _rules


def program_command(script: str, args: list[str]) -> list[str]:
    """The command that runs a student's module as a program: under the rules in place here
    (conclab.core.program installs them first), or as it is when there are none."""
    if _rules is None:
        return [sys.executable, "-u", script, *args]
    import json

    return [sys.executable, "-u", "-m", "conclab.core.program", json.dumps(_rules.fields()), script, *args]


def read_log(path: str | os.PathLike) -> list[str]:
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    seen: list[str] = []
    for line in lines:
        if line.strip() and line not in seen:
            seen.append(line[:500])
    return seen
