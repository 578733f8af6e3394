"""`conclab release OUT`: the student template.

What a student gets: the exercises (lessons, stubs, public tests), the grading machinery
(graders/conclab, with a copy of the original stubs in student.STUBS), the Classroom
workflow, pyproject.toml and a README for students.  No solutions/, no hidden graders
(graders/NN_name/), none of the repository's own tests.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

from . import manifest, student, workflow

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
    return (f"{title}\n\n{intro}\n\n**Set up once, then run the first topic's tests:**\n\n```\n"
            f"python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/pytest exercises/{first}\n```\n\n"
            f"On Windows use `.venv\\Scripts\\` instead of `.venv/bin/`. Your work is graded when you push.\n\n"
            f"{students}\n")


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
        original = out / student.STUBS / topic.id / topic.filename  # for `conclab reset` and `conclab list`
        original.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / "exercises" / topic.id / topic.filename, original)
    pyproject = (out / "pyproject.toml").read_text(encoding="utf-8")
    (out / "pyproject.toml").write_text(pyproject.replace('testpaths = ["tests"]', 'testpaths = ["exercises"]'),
                                        encoding="utf-8")
    (out / "README.md").write_text(student_readme(root), encoding="utf-8")
    return sorted(p for p in out.rglob("*") if p.is_file())


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="conclab release", description="Write the student template into OUT.")
    parser.add_argument("out", metavar="OUT", help="a folder that does not exist yet")
    options = parser.parse_args(argv)
    out = Path(options.out)
    if out.exists():
        print(f"conclab release: {out} already exists; give a new folder", file=sys.stderr)
        return 2
    if not out.resolve().parent.is_dir():
        print(f"conclab release: the folder {out.resolve().parent} does not exist", file=sys.stderr)
        return 2
    files = release(out)
    print(f"wrote the student template to {out} ({len(files)} files)")
    return 0
