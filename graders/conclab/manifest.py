"""The course manifest (topics.toml) and where the course's folders are."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import lru_cache
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

    @property
    def number(self) -> str:
        return self.id.split("_", 1)[0]

    @property
    def name(self) -> str:
        return self.id.split("_", 1)[1]

    @property
    def filename(self) -> str:
        return self.module + ".py"


_FIELDS = {"id": str, "title": str, "module": str, "points": int, "budget": (int, float), "hints": list}


def _topic(entry: dict, where: str) -> Topic:
    missing = [key for key in _FIELDS if key not in entry]
    if missing:
        raise ManifestError(f"{where}: missing {', '.join(missing)}")
    for key, kind in _FIELDS.items():
        if not isinstance(entry[key], kind):
            raise ManifestError(f"{where}: {key} has the wrong type ({type(entry[key]).__name__})")
    number, _, name = entry["id"].partition("_")
    if not (len(number) == 2 and number.isdigit() and name):
        raise ManifestError(f"{where}: id {entry['id']!r} is not of the form NN_name")
    if not entry["module"].isidentifier() or entry["module"] in sys.stdlib_module_names:
        raise ManifestError(f"{where}: module {entry['module']!r} is not a usable module name")
    if entry["points"] <= 0 or entry["budget"] <= 0:
        raise ManifestError(f"{where}: points and budget must be positive")
    return Topic(
        id=entry["id"],
        title=entry["title"],
        module=entry["module"],
        points=entry["points"],
        budget=float(entry["budget"]),
        hints=tuple(entry["hints"]),
        processes=bool(entry.get("processes", False)),
    )


@lru_cache(maxsize=None)
def load(path: Path = MANIFEST) -> tuple[Topic, ...]:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ManifestError(f"cannot read {path}: {exc}") from None
    topics = tuple(_topic(entry, f"{Path(path).name} topic {i + 1}") for i, entry in enumerate(data.get("topic", [])))
    for attr in ("id", "module", "number"):
        values = [getattr(t, attr) for t in topics]
        dupes = sorted({v for v in values if values.count(v) > 1})
        if dupes:
            raise ManifestError(f"{Path(path).name}: {attr} used by more than one topic: {', '.join(dupes)}")
    if [t.id for t in topics] != sorted(t.id for t in topics):
        raise ManifestError(f"{Path(path).name}: topics are not in order")
    return topics


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
