"""What a grading run may see: the course's machinery and graders as they were when grading
began, and of the submission only the module file of the topic it grades.

- `Snapshot.of(root)` reads the parts of the course a grading run needs (graders/, holding
  the package and the hidden graders, and the pytest settings in pyproject.toml) once, into
  memory, with a digest; never solutions/, exercises/ or anything a student could have put
  beside them.
- `Snapshot.write(folder)` lays a fresh copy of it out for one topic's run, read-only, and
  `Snapshot.changed(folder)` says afterwards what in that copy is no longer as it was, so that
  a run whose code under test rewrote the graders cannot be trusted (and no other run ever
  sees what it wrote: each has a copy of its own).
- `take(impl, topic, folder)` copies the topic's module of the submission into a private
  folder: a regular file (not a symbolic link, named pipe or device), at most the
  manifest's size, or a plain reason why it cannot be graded.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from conclab import manifest

# What of the course a grading run uses, relative to the course folder.
SEALED_FOLDERS = ("graders",)
SEALED_FILES = ("pyproject.toml",)
SKIPPED_PARTS = ("__pycache__",)
SKIPPED_SUFFIXES = (".pyc", ".egg-info")
# The digest of the course a grading command must grade with (grade-all gives it to the
# `conclab grade` of each submission, so that a course changed on disk since is refused).
DIGEST_VARIABLE = "CONCLAB_COURSE_DIGEST"


class SealError(Exception):
    """The course cannot be read for grading, or changed while grading went on."""


def _wanted(relative: Path) -> bool:
    return not any(part in SKIPPED_PARTS or part.endswith(SKIPPED_SUFFIXES) for part in relative.parts)


def _course_files(root: Path) -> list[Path]:
    files = [root / name for name in SEALED_FILES if (root / name).is_file()]
    for folder in SEALED_FOLDERS:
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and _wanted(path.relative_to(root)):
                files.append(path)
    return files


def _digest(files: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for name in sorted(files):
        data = files[name]
        h.update(f"{name}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


@dataclass(frozen=True)
class Snapshot:
    files: dict[str, bytes]  # posix path relative to the course folder -> content
    digest: str

    @classmethod
    def of(cls, root: Path) -> Snapshot:
        if not (root / "graders" / "conclab").is_dir():
            raise SealError(f"{root} holds no graders/conclab: it is not a course folder")
        files = {}
        for path in _course_files(root):
            try:
                files[path.relative_to(root).as_posix()] = path.read_bytes()
            except OSError as exc:
                raise SealError(f"cannot read {path} for grading: {exc}") from None
        return cls(files, _digest(files))

    def write(self, folder: Path) -> Path:
        """A read-only copy of the snapshot in `folder` (which must not exist yet)."""
        folder.mkdir(mode=0o700)
        made: set[Path] = set()
        for name, data in self.files.items():
            path = folder / name
            for parent in reversed(path.relative_to(folder).parents[:-1]):
                if folder / parent not in made:
                    (folder / parent).mkdir(exist_ok=True)
                    made.add(folder / parent)
            path.write_bytes(data)
            path.chmod(0o444)
        for directory in sorted(made, key=lambda p: len(p.parts), reverse=True):
            directory.chmod(0o555)
        return folder

    def changed(self, folder: Path) -> list[str]:
        """The files of the copy in `folder` (or of the course itself) that differ from the
        snapshot: changed, added or removed (bytecode caches aside), as paths relative to it."""
        now = {}
        for path in _course_files(folder):
            try:
                now[path.relative_to(folder).as_posix()] = path.read_bytes()
            except OSError:
                now[path.relative_to(folder).as_posix()] = b"\0unreadable"
        names = set(now) | set(self.files)
        return sorted(n for n in names if now.get(n) != self.files.get(n))

    def check(self, root: Path) -> None:
        """Raise SealError when the course folder is no longer as in the snapshot."""
        changed = self.changed(root)
        if changed:
            shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
            raise SealError(
                f"the course's grading files changed while grading went on ({shown} in {root}), so grading "
                "stopped rather than grade with them. Restore them (git status shows what changed) and grade again."
            )

    def expect(self, digest: str | None, root: Path) -> None:
        """Raise SealError unless the snapshot is the course a caller said to grade with."""
        if digest and digest != self.digest:
            raise SealError(
                f"the course's grading files in {root} are not those grading began with, so grading "
                "stopped rather than grade with them. Restore them (git status shows what changed) and grade again."
            )


def remove(folder: Path) -> None:
    """Remove a folder made by write() (its read-only parts included)."""
    if not folder.exists():
        return
    for path in [folder, *folder.rglob("*")]:
        try:
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o700)
        except OSError:
            pass
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def take(impl: Path, topic: manifest.Topic, folder: Path) -> str:
    """Copy the topic's module file from the submission `impl` into folder/<topic id>/; return
    why it cannot be graded ("" when it was copied)."""
    source = impl / topic.id / topic.filename
    shown = f"{topic.id}/{topic.filename}"
    target = folder / topic.id / topic.filename
    target.parent.mkdir(parents=True, mode=0o700)
    try:
        info = os.lstat(source)
    except FileNotFoundError:
        return f"There is no {shown} in {impl}, so this topic has nothing to grade."
    except OSError as exc:
        return f"{shown} cannot be read ({exc.strerror}), so this topic could not be graded."
    if not stat.S_ISREG(info.st_mode):
        return (
            f"{shown} is {_kind(info.st_mode)}, not a file: only the file itself is graded. "
            f"Put your code in {topic.filename} itself."
        )
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(source, flags)
    except OSError as exc:
        return f"{shown} cannot be read ({exc.strerror}), so this topic could not be graded."
    with os.fdopen(fd, "rb") as f:
        opened = os.fstat(f.fileno())
        if not stat.S_ISREG(opened.st_mode):  # swapped for something else since lstat
            return f"{shown} is {_kind(opened.st_mode)}, not a file: only the file itself is graded."
        data = f.read(topic.max_size + 1)
    if len(data) > topic.max_size:
        return (
            f"{shown} is larger than {topic.max_size:,} bytes, the most a module of this course may be, "
            "so it was not graded."
        )
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return ""
