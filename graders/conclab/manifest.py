"""The course manifest (topics.toml) and where the course's folders are."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10
    import tomli as tomllib

MANIFEST = Path(__file__).with_name("topics.toml")


class ManifestError(Exception):
    """The manifest or the course layout is not what the tools expect."""


@dataclass(frozen=True)
class Topic:
    id: str
    title: str
    module: str
    points: int
    budget: float
    hints: tuple[str, ...]
    processes: bool = False  # the topic starts processes: graded under every start method
    max_size: int = 100_000  # the largest module file (bytes) that is graded
    imports: tuple[str, ...] = ()  # the modules the topic's module may import (the course's and its own)
    own_imports: tuple[str, ...] = ()  # those the topic itself lists

    @property
    def number(self) -> str:
        return self.id.split("_", 1)[0]

    @property
    def name(self) -> str:
        return self.id.split("_", 1)[1]

    @property
    def filename(self) -> str:
        return self.module + ".py"


# Every key a topic may have: (its type, what to call that type in a message, required).
_FIELDS: dict[str, tuple[type | tuple[type, ...], str, bool]] = {
    "id": (str, "a string", True),
    "title": (str, "a string", True),
    "module": (str, "a string", True),
    "points": (int, "a whole number", True),
    "budget": ((int, float), "a number of seconds", True),
    "hints": (list, "a list of strings", True),
    "processes": (bool, "true or false", False),
    "max_size": (int, "a whole number of bytes", False),
    "imports": (list, "a list of module names", False),
}


def _lines(text: str) -> list[dict[str, int]]:
    """For each [[topic]] table of the manifest, in order: key -> the line it is on (and
    "[[topic]]" -> the line of the table's header), so a message can point at the line to fix."""
    tables: list[dict[str, int]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("[["):
            tables.append({"[[topic]]": number}) if stripped == "[[topic]]" else tables.append({})
        elif tables and "=" in stripped and not stripped.startswith("#"):
            tables[-1].setdefault(stripped.split("=", 1)[0].strip().strip('"'), number)
    return tables


def _topic(entry: dict, name: str, lines: dict[str, int], common: tuple[str, ...] = ()) -> Topic:
    def error(key: str | None, message: str) -> ManifestError:
        line = lines.get(key or "", lines.get("[[topic]]"))
        return ManifestError(f"{name} line {line}: {message}" if line else f"{name}: {message}")

    label = f"topic {entry.get('id')!r}" if isinstance(entry.get("id"), str) else "a topic"
    unknown = [key for key in entry if key not in _FIELDS]
    if unknown:
        raise error(unknown[0], f"{label} has the unknown key {unknown[0]!r} (a topic has {', '.join(_FIELDS)})")
    missing = [key for key, (_, _, required) in _FIELDS.items() if required and key not in entry]
    if missing:
        raise error(None, f"{label} is missing {', '.join(missing)}")
    for key, (kind, described, _) in _FIELDS.items():
        value = entry.get(key)
        wrong = key in entry and (not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool))
        listed = key in ("hints", "imports") and key in entry and not all(isinstance(h, str) for h in value)
        if wrong or listed:
            raise error(key, f"{key} of {label} must be {described}, not {value!r}")
    number, _, rest = entry["id"].partition("_")
    if not (len(number) == 2 and number.isdigit() and rest):
        raise error("id", f"id {entry['id']!r} is not of the form NN_name")
    if not entry["module"].isidentifier() or entry["module"] in sys.stdlib_module_names:
        raise error("module", f"module {entry['module']!r} of {label} is not a usable module name")
    if entry["points"] <= 0:
        raise error("points", f"points of {label} must be more than 0")
    bad = [m for m in entry.get("imports", []) if not all(part.isidentifier() for part in m.split("."))]
    if bad:
        raise error("imports", f"imports of {label}: {bad[0]!r} is not a module name")
    if entry.get("max_size", 1) <= 0:
        raise error("max_size", f"max_size of {label} must be more than 0 bytes")
    if entry["budget"] <= 0:
        raise error("budget", f"budget of {label} must be more than 0 seconds")
    return Topic(
        id=entry["id"],
        title=entry["title"],
        module=entry["module"],
        points=entry["points"],
        budget=float(entry["budget"]),
        hints=tuple(entry["hints"]),
        processes=bool(entry.get("processes", False)),
        max_size=entry.get("max_size", Topic.max_size),
        imports=tuple(dict.fromkeys(["__future__", *common, *entry.get("imports", [])])),
        own_imports=tuple(entry.get("imports", [])),
    )


@cache
def load(path: Path = MANIFEST) -> tuple[Topic, ...]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ManifestError(f"cannot read {path}: {exc}") from None
    return parse(text, Path(path).name)


def parse(text: str, name: str = MANIFEST.name) -> tuple[Topic, ...]:
    """The topics of a manifest's text (`name` is the file's, for messages)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"cannot read {name}: {exc}") from None
    extra = [key for key in data if key not in ("topic", "course")]
    if extra:
        raise ManifestError(f"{name}: unknown key {extra[0]!r} (the manifest holds [course] and [[topic]] tables only)")
    course = data.get("course", {})
    if not isinstance(course, dict) or set(course) - {"imports"}:
        raise ManifestError(f"{name}: [course] holds imports only")
    common = course.get("imports", [])
    if not isinstance(common, list) or not all(isinstance(m, str) and m for m in common):
        raise ManifestError(f"{name}: imports of [course] must be a list of module names")
    if not isinstance(data.get("topic", []), list):
        raise ManifestError(f"{name}: topic must be a list of [[topic]] tables")
    lines = _lines(text)
    topics = tuple(
        _topic(entry, name, lines[i] if i < len(lines) else {}, tuple(common))
        for i, entry in enumerate(data.get("topic", []))
    )
    for attr in ("id", "module", "number"):
        values = [getattr(t, attr) for t in topics]
        dupes = sorted({v for v in values if values.count(v) > 1})
        if dupes:
            raise ManifestError(f"{name}: {attr} used by more than one topic: {', '.join(dupes)}")
    if [t.id for t in topics] != sorted(t.id for t in topics):
        raise ManifestError(f"{name}: topics are not in order")
    return topics


def importable(topic: Topic) -> str:
    """The modules a topic's module may import, as a student reads them in a message."""
    own = [m for m in topic.own_imports if m != "__future__"]
    return (", ".join(own) + " and " if own else "") + "everyday modules such as time, sys, math and collections"


def topics() -> tuple[Topic, ...]:
    return load()


def find(key: str) -> Topic:
    """A topic by number ('3' or '03'), id ('03_condition') or name ('condition')."""
    key = str(key).strip().rstrip("/\\")
    key = Path(key).name or key
    for topic in topics():
        if key in (topic.id, topic.name, topic.module) or (key.isdigit() and int(key) == int(topic.number)):
            return topic
    choices = ", ".join(t.id for t in topics())
    raise ManifestError(f"no topic {key!r}; the topics are: {choices}")


def select(keys: list[str]) -> list[Topic]:
    """The topics named (as find() takes them), in the order given; every topic if none is."""
    return [find(key) for key in keys] or list(topics())


def topic_of_path(path: os.PathLike | str) -> Topic | None:
    """The topic whose folder holds `path` (any of exercises/, solutions/, graders/, or elsewhere)."""
    ids = {t.id: t for t in topics()}
    for part in reversed(Path(path).parts):
        if part in ids:
            return ids[part]
    return None


def course_root() -> Path:
    """The course repository: $CONCLAB_ROOT, else the checkout this package lives in, else
    the nearest folder above the working directory that has graders/ and exercises/."""
    env = os.environ.get("CONCLAB_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve().parents[2]
    candidates = [here, *Path.cwd().resolve().parents]
    candidates.insert(1, Path.cwd().resolve())
    for candidate in candidates:
        if (candidate / "graders").is_dir() and (candidate / "exercises").is_dir():
            return candidate
    raise ManifestError("cannot find the course folder (one with graders/ and exercises/); set CONCLAB_ROOT")
