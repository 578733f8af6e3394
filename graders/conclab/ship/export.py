"""`conclab export gradescope OUT.zip`, `conclab export classroom50 OUT` (and `nbgrader OUT`, see nbexport.py): the course as an
autograder for Gradescope and for Classroom 50.

Classroom 50: OUT is the folder to put at CLASSROOM/autograders/ASSIGNMENT/, holding
autograder.py (see templates/classroom50_autograder.py) and the course it installs and runs.

Gradescope:
The zip holds setup.sh and run_autograder at its root, and the course (machinery, hidden
graders, stubs) under course/.  Gradescope unpacks it into /autograder/source and runs
setup.sh once (a virtual environment with the course installed), then run_autograder for
every submission: the student's modules are laid over the stubs, `conclab grade --format
gradescope` writes /autograder/results/results.json.  A submission may be the student's
whole repository or just the module files; topics it lacks are graded on the stub (zero).

`conclab export place SUBMISSION TARGET` is the step that lays the modules out.
"""

from __future__ import annotations

import shutil
import stat
import sys
import zipfile
from pathlib import Path

from conclab import commandline, manifest
from conclab.commandline import UsageError
from conclab.templating import fill

TEMPLATES = Path(__file__).with_name("templates")

IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".pytest_cache", ".venv")


def _add_script(archive: zipfile.ZipFile, name: str, text: str) -> None:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFREG | 0o755) << 16  # executable once unpacked
    archive.writestr(info, text)


def _course_files(root: Path, topics: list[manifest.Topic]) -> list[tuple[Path, str]]:
    """(file, path in the bundle) for the course a bundle carries: the machinery, the hidden
    graders of the topics chosen, and every stub (a topic a submission lacks is graded on it)."""
    files = [(root / name, f"course/{name}") for name in ("pyproject.toml", "README.md")]
    trees = [(root / "graders" / "conclab", "course/graders/conclab")]
    trees += [(root / "graders" / t.id, f"course/graders/{t.id}") for t in topics]
    trees += [(root / "exercises" / t.id, f"course/exercises/{t.id}") for t in manifest.topics()]
    for folder, prefix in trees:
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder)
            if path.is_file() and not any(
                part in ("__pycache__", ".pytest_cache") or part.endswith(".egg-info") for part in relative.parts
            ):
                files.append((path, f"{prefix}/{relative.as_posix()}"))
    return files


def _topic_options(topics: list[manifest.Topic]) -> list[str]:
    if len(topics) == len(manifest.topics()):
        return []
    return [arg for t in topics for arg in ("--topic", t.id)]


def gradescope(out: Path, topics: list[manifest.Topic], root: Path | None = None) -> None:
    root = root or manifest.course_root()
    selection = "".join(f"{arg} " for arg in _topic_options(topics))
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        _add_script(archive, "setup.sh", fill(TEMPLATES / "gradescope-setup.sh"))
        _add_script(archive, "run_autograder", fill(TEMPLATES / "gradescope-run_autograder.sh", topics=selection))
        for path, name in _course_files(root, topics):
            archive.write(path, name)


def classroom50(out: Path, topics: list[manifest.Topic], root: Path | None = None) -> None:
    """The folder to put at CLASSROOM/autograders/ASSIGNMENT/: autograder.py and the course."""
    root = root or manifest.course_root()
    out.mkdir(parents=True)
    for path, name in _course_files(root, topics):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, out / name)
    script = (TEMPLATES / "classroom50_autograder.py").read_text(encoding="utf-8")
    (out / "autograder.py").write_text(
        script.replace("TOPICS: list[str] = []", f"TOPICS: list[str] = {[t.id for t in topics]!r}"), encoding="utf-8"
    )


def place(submission: Path, target: Path) -> list[str]:
    """Lay a student's files over the stubs in `target`: a topic folder of the submission
    (found at any depth) replaces the stub's folder; otherwise a file named like the
    topic's module replaces the stub's module.  Returns what was placed."""
    placed = []
    for topic in manifest.topics():
        folders = sorted(
            (p for p in submission.rglob(topic.id) if p.is_dir() and (p / topic.filename).is_file()),
            key=lambda p: len(p.parts),
        )
        if folders:
            shutil.rmtree(target / topic.id)
            shutil.copytree(folders[0], target / topic.id, ignore=IGNORED)
            placed.append(f"{topic.id}/ from {folders[0].relative_to(submission).as_posix()}")
            continue
        files = sorted((p for p in submission.rglob(topic.filename) if p.is_file()), key=lambda p: len(p.parts))
        if files:
            shutil.copy(files[0], target / topic.id / topic.filename)
            placed.append(f"{topic.filename} from {files[0].relative_to(submission).as_posix()}")
    return placed


def register(commands) -> None:
    parser = commandline.command(
        commands,
        "export",
        run,
        "the course as an autograder for another grading platform",
        "The course (machinery, hidden graders, stubs) as an autograder for Gradescope, Classroom 50 or nbgrader.",
    )
    # `place` is a step of the exported autograders, not for instructors: left out of the help.
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="{gradescope,classroom50,nbgrader}")
    gs = kinds.add_parser(
        "gradescope",
        help="a Gradescope autograder zip (setup.sh, run_autograder, the course)",
        description="A Gradescope autograder zip: setup.sh and run_autograder at its root, the "
        "course under course/. Upload it as the assignment's autograder.",
    )
    gs.add_argument("out", metavar="OUT.zip", help="the zip file to write")
    commandline.add_topics(gs, "only this topic, one assignment")
    c50 = kinds.add_parser(
        "classroom50",
        help="a Classroom 50 autograder bundle: the folder to put at CLASSROOM/autograders/ASSIGNMENT/",
        description="A Classroom 50 autograder bundle: autograder.py and the course it installs.",
    )
    c50.add_argument("out", metavar="OUT", help="a folder that does not exist yet")
    commandline.add_topics(c50, "only this topic, one assignment")
    nb = kinds.add_parser(
        "nbgrader",
        help="an nbgrader course folder: a notebook assignment per topic in source/",
        description="An nbgrader course folder: nbgrader_config.py, README.md and one notebook "
        "assignment per topic in source/.",
    )
    nb.add_argument("out", metavar="OUT", help="a folder that does not exist yet")
    commandline.add_topics(nb)
    put = kinds.add_parser("place")
    put.add_argument("submission")
    put.add_argument("target")


def run(options) -> int:
    if options.kind == "place":
        for line in place(Path(options.submission), Path(options.target)) or [
            "nothing: every topic is graded on its stub"
        ]:
            print(f"placed {line}")
        return 0
    topics = commandline.topics(options.topic)
    out = Path(options.out)
    if not out.resolve().parent.is_dir():
        raise UsageError(f"the folder {out.resolve().parent} does not exist")
    if options.kind in ("classroom50", "nbgrader") and out.exists():
        raise UsageError(f"{out} already exists; give a new folder")
    if options.kind == "nbgrader":
        from . import nbexport

        try:
            nbexport.export(out, topics)
        except manifest.ManifestError as exc:
            print(f"conclab export nbgrader: {exc}", file=sys.stderr)
            return 1
        print(
            f"wrote {out}: an nbgrader course with {len(topics)} assignment(s) in {out / 'source'}; "
            f"its README.md says how to generate, release and autograde them"
        )
        return 0
    if options.kind == "classroom50":
        classroom50(out, topics)
        print(
            f"wrote {out}: put it at CLASSROOM/autograders/ASSIGNMENT/ in your classroom50 repository "
            f"(topics: {', '.join(t.id for t in topics)})"
        )
        return 0
    if out.suffix != ".zip":
        raise UsageError(f"{out}: the autograder must be a .zip file")
    gradescope(out, topics)
    print(f"wrote {out}: upload it as the assignment's autograder (topics: {', '.join(t.id for t in topics)})")
    return 0
