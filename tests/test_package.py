"""The package itself: its layers import one way only, it is a regular package that no folder
of a submission can stand in for, and it runs as `python -m conclab`."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import conclab
from conclab import manifest
from conclab.grading import runner

ROOT = manifest.course_root()
PACKAGE = Path(conclab.__file__).parent

#: The layers, lowest first.  A module may import from its own layer and the ones below it.
#: The command line is the top: it puts every layer's commands in one parser, so it is the
#: one module outside dev/ that imports dev/.
LAYERS = ("base", "core", "kit", "engine", "grading", "student", "ship", "dev", "cli")
TOP_LEVEL = {
    "__init__": "base",
    "manifest": "base",
    "commandline": "base",
    "templating": "base",
    "testing": "kit",
    "cli": "cli",
    "__main__": "cli",
}


def layer_of(module: str) -> str:
    """conclab.engine.plugin -> engine; conclab.testing -> kit."""
    parts = module.split(".")[1:]
    if not parts:
        return "base"
    if parts[0] in LAYERS:
        return parts[0]
    if parts[0] in TOP_LEVEL:
        return TOP_LEVEL[parts[0]]
    raise AssertionError(f"conclab.{parts[0]} belongs to no layer: add it to a layer's folder (or to TOP_LEVEL)")


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    """conclab.x.y -> its file, for every module of the package (templates are files, not modules)."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package.parent).with_suffix("")
        if "templates" in relative.parts:
            continue
        name = ".".join(relative.parts).removesuffix(".__init__")
        found[name] = path
    return found


def imports_of(name: str, path: Path, known: dict[str, Path]) -> list[tuple[int, str]]:
    """(line, conclab module) for every import of the package in a module, in functions too,
    relative imports resolved."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.split(".")[0] == "conclab"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "conclab":
                continue
            # `from conclab.kit import state` imports the module conclab.kit.state
            found += [
                (node.lineno, f"{target}.{alias.name}" if f"{target}.{alias.name}" in known else target)
                for alias in node.names
            ]
    return found


def wrong_way_imports(package: Path = PACKAGE) -> list[str]:
    problems = []
    known = modules(package)
    for name, path in known.items():
        mine = LAYERS.index(layer_of(name))
        for line, target in imports_of(name, path, known):
            theirs = LAYERS.index(layer_of(target))
            if theirs > mine:
                problems.append(
                    f"{path.relative_to(package.parent)}:{line}: {name} ({LAYERS[mine]}) imports "
                    f"{target} ({LAYERS[theirs]}), a layer above it"
                )
    return problems


def test_every_import_of_the_package_points_down_its_layers():
    problems = wrong_way_imports()
    assert not problems, "Imports against the layers (see conclab/__init__.py):\n" + "\n".join(problems)


def test_a_wrong_way_import_is_found(tmp_path):
    """The check itself: the package with one import added the wrong way (the engine asking the
    maintainers' tools for something) fails it."""
    copy = tmp_path / "conclab"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    report = copy / "engine" / "report.py"
    report.write_text(
        report.read_text(encoding="utf-8") + "\n\ndef _late():\n    from conclab.dev import check\n", encoding="utf-8"
    )
    problems = wrong_way_imports(copy)
    assert len(problems) == 1 and "conclab.engine.report (engine) imports conclab.dev.check (dev)" in problems[0]


def test_every_module_is_in_a_layer_and_every_folder_is_a_package():
    for name in modules():
        layer_of(name)  # raises for a module of no layer
    folders = [p for p in PACKAGE.rglob("*") if p.is_dir() and p.name not in ("__pycache__", "templates", "stubs")]
    assert folders and all((folder / "__init__.py").is_file() for folder in folders)
    assert (PACKAGE / "__init__.py").is_file()


def test_python_m_conclab_and_version():
    run = subprocess.run(
        [sys.executable, "-m", "conclab", "--version"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0 and run.stdout.strip() == f"conclab {conclab.__version__}", run.stdout + run.stderr


SHADOW = """
import pathlib
pathlib.Path({marker!r}).write_text("imported from the submission: {what}")
"""


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_a_folder_named_conclab_in_a_submission_is_never_imported(tmp_path, start_method):
    """A submission that brings its own `conclab` (a whole package, or a grader helper module in
    a namespace folder) beside its module: the graders, and the worker processes they start,
    use the course's own package all the same."""
    impl = tmp_path / "impl"
    for topic_id in ("07_deadlock", "09_processes"):
        shutil.copytree(ROOT / "solutions" / topic_id, impl / topic_id)
    marker = tmp_path / "shadowed.txt"
    fake = {
        "07_deadlock/conclab/locks.py": "conclab.locks",  # a namespace folder, as before the package was regular
        "07_deadlock/conclab/kit/locks.py": "conclab.kit.locks",
        "09_processes/conclab/__init__.py": "conclab",  # a regular package of the same name
        "09_processes/conclab/kit/__init__.py": "conclab.kit",
        "09_processes/conclab/kit/workers.py": "conclab.kit.workers",
        "09_processes/conclab/testing.py": "conclab.testing",
    }
    for relative, what in fake.items():
        (impl / relative).parent.mkdir(parents=True, exist_ok=True)
        (impl / relative).write_text(SHADOW.format(marker=str(marker), what=what), encoding="utf-8")
    run = runner.run_in_own_group(
        [
            sys.executable,
            "-m",
            "pytest",
            "graders/07_deadlock",
            "graders/09_processes",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--impl={impl}",
            f"--start-method={start_method}",
        ],
        ROOT,
        runner.child_env(ROOT),
        300,
    )
    returncode, output = run
    assert not marker.exists(), marker.read_text()
    assert returncode == 0, output[-3000:]


@pytest.mark.parametrize("command", [["check", "."], ["format", "--check", "."]], ids=["check", "format"])
def test_the_tree_passes_ruff(command):
    """The lint job of CI, here too (ruff comes with the dev extra, which the README installs)."""
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is not installed: pip install -e '.[nbgrader,dev]'"
    run = subprocess.run([ruff, *command], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
