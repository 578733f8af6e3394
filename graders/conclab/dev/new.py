"""`conclab dev new NN_name --module M`: a new topic's files, ready to be filled in.

It writes, from the files in dev/templates/: the manifest entry (in order among the others),
the lesson, the stub with its TODO, the public tests, the solution, the graders and the
mutants file, and it adds the topic's row to the README's table and a step to the
Classroom workflow.  What it writes is the shape of a topic, not its content: `conclab dev
check --topic NN` fails until the solution, the graders and the mutants are written
(.github/CONTRIBUTING.md says how).  It changes nothing when any of it would clash with
what is there.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from conclab import commandline, manifest
from conclab.commandline import UsageError
from conclab.templating import fill, placeholders

TEMPLATES = Path(__file__).with_name("templates")
_TABLE_ROW = re.compile(r"^\| `(\d\d)_\w+` \| `\w+\.py` \|.*$", re.M)


def register(commands) -> None:
    parser = commandline.command(
        commands,
        "new",
        run,
        "scaffold a new topic: manifest entry, lesson, stub, tests, solution, graders, mutants",
        __doc__.split("\n\n")[0],
    )
    parser.add_argument("id", metavar="NN_name", help="the topic's folder name: its number (two digits) and a name")
    parser.add_argument("--module", required=True, metavar="M", help="the module the student edits (without .py)")
    parser.add_argument("--title", help="one line for `conclab list` and the reports (default: from the name)")
    parser.add_argument(
        "--points",
        type=commandline.at_least_one,
        default=10,
        metavar="N",
        help="what the topic's graders are worth (default 10)",
    )
    parser.add_argument(
        "--budget",
        type=commandline.more_than_zero,
        default=10,
        metavar="S",
        help="seconds one test may take before it fails as stuck (default 10)",
    )


def files_of(topic_id: str, module: str, root: Path) -> dict[Path, str]:
    """The new files, by path, each with the template it is filled from."""
    return {
        root / "exercises" / topic_id / "README.md": "lesson.md.tmpl",
        root / "exercises" / topic_id / f"{module}.py": "stub.py.tmpl",
        root / "exercises" / topic_id / f"test_{module}.py": "public_test.py.tmpl",
        root / "solutions" / topic_id / f"{module}.py": "solution.py.tmpl",
        root / "graders" / topic_id / f"test_{module}.py": "graders.py.tmpl",
        root / "tests" / "mutants" / f"{topic_id}.toml": "mutants.toml.tmpl",
    }


def _check(topic_id: str, module: str, root: Path) -> None:
    number, _, name = topic_id.partition("_")
    if not (len(number) == 2 and number.isdigit() and name and name.isidentifier()):
        raise UsageError(f"{topic_id!r} is not of the form NN_name (two digits, an underscore, a name)")
    if not module.isidentifier() or module in sys.stdlib_module_names:
        raise UsageError(f"--module {module!r} is not a usable module name (an identifier, and no standard module)")
    for topic in manifest.topics():
        if topic.number == number:
            raise UsageError(f"topic number {number} is taken by {topic.id}")
        if topic.module == module:
            raise UsageError(f"the module {module} belongs to {topic.id}")
    there = [path for path in files_of(topic_id, module, root) if path.exists()]
    there += [
        root / kind / topic_id for kind in ("exercises", "solutions", "graders") if (root / kind / topic_id).exists()
    ]
    if there:
        raise UsageError(f"{there[0].relative_to(root)} exists already")


def _manifest_with(text: str, entry: str, topic_id: str) -> str:
    """The manifest's text with the entry before the first topic that comes after it."""
    later = [t for t in manifest.topics() if t.id > topic_id]
    if not later:
        return text.rstrip("\n") + "\n" + entry
    where = text.index(f'id = "{later[0].id}"')
    header = text.rindex("[[topic]]", 0, where)
    return text[:header].rstrip("\n") + "\n" + entry + "\n" + text[header:]


def _readme_with(text: str, row: str, number: str) -> str:
    """The README with the topic's row in its table of topics, in order."""
    rows = list(_TABLE_ROW.finditer(text))
    if not rows:
        raise UsageError("README.md has no table of topics to add the row to")
    after = [m for m in rows if m.group(1) < number]
    if after:
        at = after[-1].end()
        return text[:at] + "\n" + row + text[at:]
    return text[: rows[0].start()] + row + "\n" + text[rows[0].start() :]


def scaffold(topic_id: str, module: str, title: str, points: int, budget: float, root: Path) -> list[Path]:
    """Write the new topic's files and entries; returns what was written or changed."""
    _check(topic_id, module, root)
    number = topic_id.split("_", 1)[0]
    values = {"id": topic_id, "number": number, "title": title, "module": module, "function": "solve"}
    texts = {
        path: fill(TEMPLATES / template, **{key: values[key] for key in placeholders(TEMPLATES / template)})
        for path, template in files_of(topic_id, module, root).items()
    }
    entry = fill(
        TEMPLATES / "topic.toml.tmpl",
        id=topic_id,
        title=title.replace('"', '\\"'),
        module=module,
        points=points,
        budget=f"{budget:g}",
    )
    manifest_text = _manifest_with(manifest.MANIFEST.read_text(encoding="utf-8"), entry, topic_id)
    readme = root / "README.md"
    readme_text = _readme_with(
        readme.read_text(encoding="utf-8"), f"| `{topic_id}` | `{module}.py` | {title} |", number
    )
    manifest.parse(manifest_text, manifest.MANIFEST.name)  # the new manifest must be a valid one
    # Everything is checked and made: now write.
    for path, text in texts.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    manifest.MANIFEST.write_text(manifest_text, encoding="utf-8")
    readme.write_text(readme_text, encoding="utf-8")
    manifest.load.cache_clear()
    from conclab.ship import workflow

    workflow_path = root / workflow.PATH
    workflow_path.write_text(workflow.render(), encoding="utf-8")
    return [*texts, manifest.MANIFEST, readme, workflow_path]


def run(options) -> int:
    root = manifest.course_root()
    title = options.title or options.id.split("_", 1)[-1].replace("_", " ").capitalize()
    written = scaffold(options.id, options.module, title, options.points, options.budget, root)
    print(f"wrote topic {options.id}:")
    for path in written:
        print(f"  {path.relative_to(root) if path.is_relative_to(root) else path}")
    print(
        f"Next: write the lesson, the solution, the graders and the mutants (.github/CONTRIBUTING.md), "
        f"then `conclab dev check --topic {options.id.split('_', 1)[0]}`."
    )
    return 0
