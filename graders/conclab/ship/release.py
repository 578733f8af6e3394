"""`conclab release OUT`: the student template.

What a student gets: the exercises (lessons, stubs, public tests), the grading machinery
(graders/conclab, with a copy of the original stubs in work.STUBS), the Classroom
workflow, pyproject.toml and a README for students.  No solutions/, no hidden graders
(graders/NN_name/), none of the repository's own tests.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from conclab import commandline, manifest
from conclab.commandline import UsageError
from conclab.student import work

from . import workflow

#: Paths (relative to the course root) that make up the template, besides the exercises.
SHIPPED = ["pyproject.toml", ".gitignore", "graders/conclab", str(workflow.PATH)]
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".pytest_cache")


def student_readme(root: Path) -> str:
    """The course README's title and introduction, how to start, and its part for students."""
    text = (root / "README.md").read_text(encoding="utf-8")
    title, intro = text.split("\n\n")[:2]
    first = manifest.topics()[0].id
    match = re.search(r"\n## For students\n.*?(?=\n## )", text, flags=re.S)
    students = match.group(0).strip() if match else ""
    return (
        f"{title}\n\n{intro}\n\n**Set up once, then run the first topic's tests:**\n\n```\n"
        f"python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/pytest exercises/{first}\n```\n\n"
        f"On Windows use `.venv\\Scripts\\` instead of `.venv/bin/`. Your work is graded when you push.\n\n"
        f"{students}\n"
    )


def student_pyproject(path: Path) -> None:
    """The course's pyproject.toml as a student's copy needs it: `pytest` with no path runs the
    public tests (the repository's own tests/ do not ship).  Read and written as TOML, its
    comments and layout kept."""
    import tomlkit

    document = tomlkit.parse(path.read_text(encoding="utf-8"))
    document["tool"]["pytest"]["ini_options"]["testpaths"] = ["exercises"]  # type: ignore[index]
    path.write_text(tomlkit.dumps(document), encoding="utf-8")


def release(out: Path, root: Path | None = None) -> list[Path]:
    """Write the template into `out` (which must not exist yet); returns the files written."""
    root = root or manifest.course_root()
    out.mkdir(parents=True)
    for relative in SHIPPED:
        source = root / relative
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=IGNORED)
        else:
            shutil.copy2(source, target)
    for topic in manifest.topics():
        shutil.copytree(root / "exercises" / topic.id, out / "exercises" / topic.id, ignore=IGNORED)
        original = out / work.STUBS / topic.id / topic.filename  # for `conclab reset` and `conclab list`
        original.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / "exercises" / topic.id / topic.filename, original)
    student_pyproject(out / "pyproject.toml")
    (out / "README.md").write_text(student_readme(root), encoding="utf-8")
    return sorted(p for p in out.rglob("*") if p.is_file())


def register(commands) -> None:
    parser = commandline.command(
        commands,
        "release",
        run,
        "write the student template (no solutions, no hidden graders)",
        "Write the student template into OUT: the exercises, lessons, public tests, the "
        "grading machinery and the\nClassroom workflow; no solutions/, no hidden graders, none "
        "of the repository's own tests.",
    )
    parser.add_argument("out", metavar="OUT", help="a folder that does not exist yet")


def run(options) -> int:
    out = Path(options.out)
    if out.exists():
        raise UsageError(f"{out} already exists; give a new folder")
    if not out.resolve().parent.is_dir():
        raise UsageError(f"the folder {out.resolve().parent} does not exist")
    files = release(out)
    print(f"wrote the student template to {out} ({len(files)} files)")
    return 0
