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
import os
import sys
import sysconfig
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STUDENT, COURSE, HELPER, OTHER, LINECACHE = "student", "course", "helper", "other", "linecache"


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

    def __reduce__(self):  # a worker process started by spawn or forkserver installs it first
        fields = tuple((m.name, m.filename, m.imports, m.folder, m.listed) for m in self.modules)
        return (_install_in_worker, (fields, self.scratch, self.log))

    def of_file(self, path: str) -> Module | None:
        """The topic module whose file this is (only the module itself is the student's: public
        tests may sit beside it)."""
        for module in self.modules:
            if path == os.path.join(module.folder, module.filename):
                return module
        return None


def _install_in_worker(fields: tuple, scratch: str, log: str) -> Rules:
    rules = Rules(tuple(Module(*f) for f in fields), scratch, log)
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
_LINECACHE = {os.path.join(d, name) for d in _STDLIB for name in ("linecache.py", "tokenize.py")}
_kinds: dict[str, str] = {}


def _under(path: str, folders) -> bool:
    return any(path == f or path.startswith(f + os.sep) for f in folders)


def _kind(filename: str) -> str:
    kind = _kinds.get(filename)
    if kind is None:
        path = os.path.abspath(filename) if not filename.startswith("<") else filename
        if _rules is not None and _rules.of_file(path) is not None:
            kind = STUDENT
        elif _under(path, _HELPER_DIRS):
            kind = HELPER
        elif path in _LINECACHE:
            kind = LINECACHE
        elif _under(path, _COURSE_DIRS):
            kind = COURSE
        else:
            kind = OTHER
        _kinds[filename] = kind
    return kind


def _actor(frame) -> tuple[str, Any]:
    """Who is acting: the kind of the nearest frame that is not OTHER, and the student's
    nearest frame (for the message), if any.  A stack with none of them is the student's
    (a thread or a clean-up started from its code, running a library function)."""
    student = None
    actor = None
    while frame is not None:
        kind = _kind(frame.f_code.co_filename)
        if kind == STUDENT and student is None:
            student = frame
        if actor is None and kind not in (OTHER, LINECACHE):
            actor = kind
        if actor is not None and (student is not None or actor != STUDENT):
            break
        frame = frame.f_back
    return actor or STUDENT, student


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
_SAFE_BUILTINS = frozenset(
    "bool int float complex str bytes bytearray tuple list dict set frozenset range slice object type "
    "Exception BaseException ValueError KeyError IndexError TypeError RuntimeError ZeroDivisionError "
    "ArithmeticError LookupError OSError TimeoutError StopIteration NotImplementedError AssertionError "
    "AttributeError ConnectionError EOFError getattr".split()  # getattr: how a bound method is pickled
)
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
_LOOPBACK = ("127.", "::1", "localhost", "0:0:0:0:0:0:0:1")


def _loopback(host: Any) -> bool:
    return isinstance(host, str) and (host.startswith(_LOOPBACK) or host == "")


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
    if not isinstance(pid, int) or pid <= 0 or pid == os.getpid():
        return False
    try:
        import psutil

        return any(p.pid == pid for p in psutil.Process().children(recursive=True))
    except Exception:
        return False


def _unpicklable(module: str, name: str) -> bool:
    """What unpickling may look up: the exercise's module and the modules it may import, the
    graders' workers, multiprocessing's own rebuilding of its objects, plain data types."""
    assert _rules is not None
    top = module.split(".")[0]
    if any(module == m.name for m in _rules.modules) or top in ("multiprocessing", "concurrent"):
        return True
    if any(module in m.imports for m in _rules.modules):
        return not name.startswith("_")
    if module in (
        "conclab.kit.workers",
        "conclab.kit.messaging",
        "collections",
        "copyreg",
        "datetime",
        "decimal",
        "fractions",
    ):
        return True
    if module == "ctypes":
        return name.startswith("c_")  # the types of multiprocessing's shared values
    if module == "conclab.core.guard":
        return name in ("_install_in_worker", "Refused")
    if _is_exception(module, name):  # an error raised in a worker, sent back to be raised again
        return True
    return module == "builtins" and name in _SAFE_BUILTINS


def _is_exception(module: str, name: str) -> bool:
    found = sys.modules.get(module)
    value = getattr(found, name, None) if found is not None and "." not in name else None
    return isinstance(value, type) and issubclass(value, BaseException)


def _verdict(event: str, args: tuple, actor: str) -> str | None:
    """What is refused ("" or None: allowed)."""
    if event in _INSPECT:
        if event in _OWN_CALLS and actor == HELPER:
            return None
        if event.startswith("ctypes.") and actor == HELPER:  # multiprocessing's shared values
            return None
        what = _INSPECT[event]
        if event == "object.__getattr__" and len(args) > 1:
            what = f"the attribute {args[1]}"
        return f"asks {what}: graded code may not inspect the interpreter or the graders"
    if event in _PROGRAMS:
        return f"asks {_PROGRAMS[event]}: graded code may not run other programs"
    if event == "os.fork":
        return None if actor == HELPER else "asks os.fork(): start processes with multiprocessing"
    if event == "open":
        path, mode, flags = (list(args) + [None, None, None])[:3]
        if isinstance(path, int):
            if actor == HELPER or not _writes(mode, flags) or path in (1, 2):
                return None
            return "asks to write to a file descriptor: graded code may not write files"
        path = os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else str(path)
        if _writes(mode, flags):
            if actor == HELPER and _scratch(path):
                return None
            return f"asks to write {path}: graded code may not write files"
        if actor == HELPER and (_scratch(path) or path.startswith(("/proc/", "/sys/", "/dev/"))):
            return None
        if path.startswith("<") and not os.path.exists(path):
            return None  # no file: Python 3.13's ast.parse of a traceback's source line says "<unknown>"
        return None if _readable(path) else f"asks to open {path}: graded code may not read files outside its folder"
    if event in _FILES:
        if actor == HELPER and (not args or isinstance(args[0], int) or _scratch(args[0]) or _relative(args)):
            return None
        return f"asks {_FILES[event]}: graded code may not change files"
    if event in _LISTING:
        if actor == HELPER:
            return None
        path = args[0] if args else "."
        if isinstance(path, (str, bytes, os.PathLike)) and _readable(os.fsdecode(path)):
            return None
        return f"asks to list the folder {path}: graded code may not look at files outside its folder"
    if event in _SIGNALS:
        pid = args[0] if args else None
        if event == "signal.pthread_kill":
            return "asks to signal a thread: graded code may not send signals"
        if actor == HELPER:  # multiprocessing ending the workers it started
            return None
        return None if _own_child(pid) else f"asks to signal process {pid}, which is not its own child"
    if event in _NETWORK:
        address = args[1] if len(args) > 1 else None
        if isinstance(address, tuple) and address and _loopback(address[0]):
            return None
        if address is None or (
            isinstance(address, (str, bytes)) and (actor == HELPER or _scratch(address) or not address)
        ):
            return None
        return f"asks to connect to {address!r}: graded code may use the network only on this machine (loopback)"
    if event in _NAMES:
        host = args[0] if args else None
        return None if _loopback(host) or host is None else f"asks to look up {host!r}: only loopback is allowed"
    if event in _ENVIRONMENT:
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
        if event in _OWN_CALLS and _kind(frame.f_code.co_filename) != STUDENT:
            return
        if event == "open" and (
            frame.f_code.co_filename.startswith("<frozen importlib") or _kind(frame.f_code.co_filename) == LINECACHE
        ):
            return  # an import reading its module (the import is what is judged), a traceback's lines
        if event in _CODE:
            # exec and compile: only when the student's code calls them itself (dataclasses and
            # namedtuple compile code of their own; imports run the modules' code)
            if _kind(frame.f_code.co_filename) != STUDENT:
                return
            code = args[0] if args else None
            filename = getattr(code, "co_filename", None) or (args[1] if event == "compile" and len(args) > 1 else "")
            if _under(os.path.abspath(str(filename)), _LIBRARIES) and not _under(
                os.path.abspath(str(filename)), _COURSE_DIRS[:1]
            ):
                return
            _refuse(f"asks {event}(): graded code may not run code it makes or reads", frame)
        if event in ("sys.settrace", "sys.setprofile"):
            # a new thread takes the trace and profile functions threading holds: the graders'
            # own, or those there were before the guard (a coverage tool's)
            if frame.f_code.co_name == "_bootstrap_inner" and _known_hooks():
                return
            current = sys.gettrace() if event == "sys.settrace" else sys.getprofile()
            if current is not None and _known(current, None):
                return  # the graders' trace function is being taken away (Python does so when it raises)
            actor, student = _actor(frame)
            if actor == COURSE:
                return
            _refuse(f"asks {event}(): graded code may not trace the interpreter", student or frame)
        actor, student = _actor(frame)
        if actor == COURSE:
            return
        refused = _verdict(event, args, actor)
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

        multiprocessing.current_process()._config["conclab_guard"] = rules  # carried to spawned workers
    except Exception:  # pragma: no cover - multiprocessing is always there
        pass


def installed() -> Rules | None:
    return _rules


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
