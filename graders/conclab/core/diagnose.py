"""Say in plain words where threads are stuck.

A stuck thread's stack is long and mostly library code.  What a student needs is the
line of *their* file the thread is on, and what it is doing there (waiting for a lock,
a condition, a join...).  `where(thread)` finds that line; `report(threads)` writes one
paragraph per thread.
"""

from __future__ import annotations

import ast
import linecache
import os
import re
import sys
import threading
import traceback
from pathlib import Path
from types import FrameType, TracebackType

# Files whose frames count as "the student's code": set by the plugin to the chosen
# implementation's topic folders.
_student_dirs: list[str] = []
_package_dir = str(Path(__file__).resolve().parents[1])  # graders/conclab
_course_dir = str(Path(__file__).resolve().parents[2])  # graders/: the package and the graders

# What a thread is doing, told by the innermost library function it is in.
_WAITING_IN = {
    ("threading.py", "wait"): "waiting on a Condition or Event",
    ("threading.py", "join"): "waiting for another thread to finish (join)",
    ("threading.py", "_wait_for_tstate_lock"): "waiting for another thread to finish (join)",
    ("threading.py", "acquire"): "waiting to acquire a Semaphore",
    ("threading.py", "__enter__"): "waiting to acquire a lock",
    ("queue.py", "get"): "waiting for an item from a queue",
    ("queue.py", "put"): "waiting for room in a queue",
    ("queue.py", "join"): "waiting for queue tasks to be marked done",
    ("connection.py", "recv"): "waiting to receive from a pipe",
    ("connection.py", "_recv"): "waiting to receive from a pipe",
    ("connection.py", "recv_bytes"): "waiting to receive from a pipe",
    ("connection.py", "wait"): "waiting for a pipe to have data",
    ("connection.py", "accept"): "waiting for a client to connect (accept)",
    ("socket.py", "accept"): "waiting for a client to connect (accept)",
    ("popen_fork.py", "wait"): "waiting for a child process to exit (join)",
    ("popen_fork.py", "poll"): "waiting for a child process to exit (join)",
    ("pool.py", "get"): "waiting for a pool result",
    ("_base.py", "result"): "waiting for a Future's result",
    ("time.py", "sleep"): "sleeping",
}


def set_student_dirs(dirs: list[os.PathLike | str]) -> None:
    _student_dirs[:] = [os.path.normcase(str(Path(d).resolve())) for d in dirs]


def is_student_file(filename: str) -> bool:
    if not _student_dirs:
        return False
    try:
        folder = os.path.normcase(os.path.dirname(os.path.abspath(filename)))
    except (TypeError, ValueError):
        return False
    return folder in _student_dirs


def _is_library(filename: str) -> bool:
    return not is_student_file(filename) and not filename.startswith(_package_dir)


def _frames(frame: FrameType | None) -> list[FrameType]:
    stack = []
    while frame is not None:
        stack.append(frame)
        frame = frame.f_back
    return stack  # innermost first


def _source(frame: FrameType) -> str:
    return linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()


def _place(frame: FrameType) -> str:
    name = os.path.basename(frame.f_code.co_filename)
    return f"{name} line {frame.f_lineno}, in {frame.f_code.co_name}()"


def activity(frame: FrameType | None) -> str | None:
    """What the innermost library call of this stack is doing, when we can tell."""
    for f in _frames(frame):
        if not _is_library(f.f_code.co_filename):
            break
        key = (os.path.basename(f.f_code.co_filename), f.f_code.co_name)
        if key in _WAITING_IN:
            return _WAITING_IN[key]
    innermost = frame
    if innermost is not None and is_student_file(innermost.f_code.co_filename):
        line = _source(innermost)
        if ".acquire(" in line or line.startswith("with "):
            return "waiting to acquire a lock"
        if ".join(" in line:
            return "waiting for a thread or process to finish (join)"
        if "read(" in line or "recv" in line:
            return "waiting to read from a pipe or socket"
        if "sleep(" in line:
            return "sleeping"
        return "running (a loop that does not end?)"
    return None


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_trees: dict[str, ast.AST | None] = {}


def _lock_expression(line: str) -> str | None:
    """`with self._lock:` or `self._lock.acquire()` -> 'self._lock'."""
    match = re.match(r"^with\s+(.+?)\s*(?:as\s+\w+\s*)?:\s*$", line) or re.match(r"^(.+?)\.acquire\(", line)
    if match and _NAME.match(match.group(1)):
        return match.group(1)
    return None


def _resolve(expression: str, frame: FrameType):
    head, *rest = expression.split(".")
    try:
        value = frame.f_locals[head] if head in frame.f_locals else frame.f_globals[head]
        for attr in rest:
            value = object.__getattribute__(value, attr) if not isinstance(value, type(os)) else getattr(value, attr)
        return value
    except Exception:  # noqa: BLE001 - a best-effort diagnosis
        return None


def _held_with_blocks(frame: FrameType) -> list[tuple[str, int]]:
    """`with NAME:` blocks that this frame is inside of right now: [(NAME, line of the with)]."""
    filename = frame.f_code.co_filename
    if filename not in _trees:
        try:
            _trees[filename] = ast.parse("".join(linecache.getlines(filename)))
        except SyntaxError:
            _trees[filename] = None
    tree = _trees[filename]
    if tree is None:
        return []
    held = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.With, ast.AsyncWith)) and node.body:
            if node.body[0].lineno <= frame.f_lineno <= (node.end_lineno or 0):
                for item in node.items:
                    text = ast.unparse(item.context_expr)
                    if _NAME.match(text):
                        held.append((text, node.lineno))
    return held


def self_deadlock(frame: FrameType | None) -> str | None:
    """If this thread waits for a lock it already holds itself, say so."""
    stack = [f for f in _frames(frame) if is_student_file(f.f_code.co_filename)]
    if not stack:
        return None
    waiting_for = _lock_expression(_source(stack[0]))
    if waiting_for is None:
        return None
    wanted = _resolve(waiting_for, stack[0])
    if wanted is None:
        return None
    for outer in stack[1:]:
        for text, line in _held_with_blocks(outer):
            if _resolve(text, outer) is wanted:
                kind = type(wanted).__name__
                return (
                    f"It already holds this lock: it took `{text}` at {os.path.basename(outer.f_code.co_filename)} "
                    f"line {line}, in {outer.f_code.co_name}(), and now asks for the same lock again. "
                    f"A {kind} cannot be taken twice by the same thread, so it waits for itself for ever. "
                    f"A reentrant lock (threading.RLock) can be taken again by the thread that holds it."
                )
    return None


def where(frame: FrameType | None) -> list[str]:
    """Lines of the student's code on this stack, innermost first, with their source."""
    lines = []
    for f in _frames(frame):
        if is_student_file(f.f_code.co_filename):
            lines.append(f"{_place(f)}: {_source(f)}")
    return lines


def student_frame(tb: TracebackType | None) -> traceback.FrameSummary | None:
    """The last frame of the student's code in a traceback (None when none is theirs)."""
    mine = [f for f in traceback.extract_tb(tb) if is_student_file(f.filename)]
    return mine[-1] if mine else None


#: How much of an exception's text raised by the code under test a student is shown.
SHOWN = 200


def short(value: object) -> str:
    """The text of an exception (or any value) of the code under test, as a message shows it:
    at most SHOWN characters, on one line."""
    try:
        text = str(value)
    except Exception:
        text = f"<{type(value).__name__} that cannot be shown>"
    text = " ".join(text.split())
    if len(text) <= SHOWN:
        return text
    kept = text[: SHOWN - 3]
    if " " in kept[SHOWN // 2 :] and text[SHOWN - 3] != " ":  # cut between words, not inside one
        kept = kept.rsplit(" ", 1)[0]
    return kept.rstrip() + "..."


def exception_text(exc: BaseException) -> str:
    """`ValueError: the text`, the text at most SHOWN characters."""
    text = short(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def raised_by_student(tb: TracebackType | None) -> bool:
    """Whether the student's code raised the exception of this traceback, itself or through a
    library function it called (pytest.skip, sys.exit): the innermost frame that is either the
    student's or the course's (the package, the graders) is the student's."""
    course = _course_dir + os.sep
    for frame in reversed(traceback.extract_tb(tb)):
        if is_student_file(frame.filename):
            return True
        if os.path.abspath(frame.filename).startswith(course):
            return False
    return False


def raised_at(tb: TracebackType | None) -> str:
    """The last line of the student's code in a traceback, as `bank.py line 12: balance -= amount`,
    or "" when none of it is the student's."""
    frame = student_frame(tb)
    return f"{Path(frame.filename).name} line {frame.lineno}: {(frame.line or '').strip()}" if frame else ""


def describe(thread: threading.Thread, frame: FrameType | None = None) -> str:
    if frame is None:
        frame = sys._current_frames().get(thread.ident)  # type: ignore[arg-type]
    kind = "daemon thread" if thread.daemon else "thread"
    if frame is None:
        return f"{kind} {thread.name!r}: finished or not started"
    doing = activity(frame) or "busy"
    mine = where(frame)
    if mine:
        text = f"{kind} {thread.name!r} is {doing} at {mine[0]}"
        for outer in mine[1:3]:
            text += f"\n      called from {outer}"
        note = self_deadlock(frame)
        if note:
            text += "\n    " + note
        return text
    innermost = _frames(frame)[0]
    return f"{kind} {thread.name!r} is {doing} at {_place(innermost)} (not in your code)"


def report(threads: list[threading.Thread]) -> str:
    """One paragraph per live thread, naming the line of student code it is on."""
    frames = sys._current_frames()
    alive = [t for t in threads if t.is_alive()]
    if not alive:
        return "  (no thread is left running)"
    return "\n".join("  - " + describe(t, frames.get(t.ident)) for t in alive)  # type: ignore[arg-type]


def all_threads_report(exclude: set[int] | None = None) -> str:
    """Every live thread except the excluded idents (and the one asking)."""
    exclude = set(exclude or ()) | {threading.get_ident()}
    threads = [t for t in threading.enumerate() if t.ident not in exclude]
    return report(threads)
