"""Checks of the course itself, for its maintainers (`conclab dev check`, and tests/).

- every reference solution passes its graders and public tests;
- every untouched stub fails every one of its graders, quickly, leaving nothing behind;
- every mutant (a solution with one bug of the topic's list, tests/mutants/NN_name.toml)
  fails the graders named in its `catches`;
- every variant (a correct solution with another strategy, tests/variants/NN_name.toml)
  passes them.

Each check runs pytest in a child process, exactly as a student or CI would, and reads
its JUnit XML report.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from conclab import commandline, manifest
from conclab.core import cleanup, guard
from conclab.engine.results import NOT_MEASURED
from conclab.grading.runner import child_env, run_in_own_group
from conclab.manifest import Topic, tomllib


@dataclass
class Edit:
    old: str
    new: str
    all: bool = False


@dataclass
class Mutant:
    topic: Topic
    name: str
    bug: str
    edits: list[Edit]
    catches: list[str] = field(default_factory=list)
    breaks: list[str] = field(default_factory=list)  # the ids of the promises (tests/mutants/) it breaks
    public: list[str] = field(default_factory=list)  # the public tests that must fail on it too (the
    #                                                  lesson's headline bug), in plain words

    @property
    def id(self) -> str:
        return f"{self.topic.id}/{self.name}"


def edits_of(entry: dict) -> list[Edit]:
    """The [[...edit]] tables of a TOML entry (old -> new, `all` to replace every occurrence)."""
    return [Edit(e["old"], e["new"], e.get("all", False)) for e in entry.get("edit", [])]


def _load_edits(kind: str, root: Path | None) -> list[Mutant]:
    """tests/<kind>s/NN_name.toml: [[<kind>]] entries, each a list of edits of the solution."""
    found = []
    for topic in manifest.topics():
        path = (root or manifest.course_root()) / "tests" / f"{kind}s" / f"{topic.id}.toml"
        if not path.exists():
            continue
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        for entry in data.get(kind, []):
            edits = edits_of(entry)
            if not edits:
                raise ValueError(f"{path}: {kind} {entry['name']!r} has no [[{kind}.edit]]")
            what = entry.get("bug") or entry.get("strategy", "")
            breaks = entry.get("breaks", [])
            found.append(
                Mutant(
                    topic,
                    entry["name"],
                    what,
                    edits,
                    list(entry.get("catches", [])),
                    [breaks] if isinstance(breaks, str) else list(breaks),
                    list(entry.get("public", [])),
                )
            )
    return found


def load_mutants(root: Path | None = None) -> list[Mutant]:
    """Solutions with one listed bug each: the graders must fail them."""
    return _load_edits("mutant", root)


def load_variants(root: Path | None = None) -> list[Mutant]:
    """Other correct solutions (another strategy): the graders must pass them."""
    return _load_edits("variant", root)


def apply_edits(source: str, mutant: Mutant) -> str:
    for edit in mutant.edits:
        count = source.count(edit.old)
        if count == 0 or (count > 1 and not edit.all):
            raise ValueError(
                f"mutant {mutant.id}: the text to replace occurs {count} times in the solution "
                f"(expected {'at least once' if edit.all else 'exactly once'}):\n{edit.old}"
            )
        source = source.replace(edit.old, edit.new)
    return source


def make_mutant(mutant: Mutant, dest: Path, root: Path | None = None) -> Path:
    """Write dest/NN_name/ as the solution folder with the mutant's edits; return dest."""
    root = root or manifest.course_root()
    folder = dest / mutant.topic.id
    shutil.copytree(
        root / "solutions" / mutant.topic.id, folder, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True
    )
    module = folder / mutant.topic.filename
    module.write_text(apply_edits(module.read_text(encoding="utf-8"), mutant), encoding="utf-8")
    return dest


@dataclass
class Run:
    returncode: int
    outcomes: dict[str, str]  # test name (with parameters) -> passed / failed / skipped
    duration: float
    output: str
    test_time: float = 0.0  # the tests' own time (set-up, call, tear-down), without start-up or waiting for
    #                         the machine (a test marked `alone` waits until no other test runs)
    left: list[str] = field(default_factory=list)  # processes still running once pytest had ended
    refused: list[str] = field(default_factory=list)  # what the guard refused the code under test
    messages: dict[str, str] = field(default_factory=dict)  # failed test -> its failure's text

    def failed(self) -> list[str]:
        return [name for name, outcome in self.outcomes.items() if outcome == "failed"]

    def unmeasured(self) -> list[str]:
        """Tests that could not be measured (other programs had the CPUs): no fail, no pass."""
        return [name for name, outcome in self.outcomes.items() if outcome == "unmeasured"]

    def clean(self) -> bool:
        """Nothing failed: every test passed, or could not be measured on a busy machine."""
        return self.returncode == 0 or (self.returncode == 1 and not self.failed() and bool(self.unmeasured()))

    def unmeasured_text(self) -> str:
        found = self.unmeasured()
        return f", {len(found)} could not be measured (a busy machine): {', '.join(found)}" if found else ""

    def passed(self) -> list[str]:
        return [name for name, outcome in self.outcomes.items() if outcome == "passed"]

    def left_text(self) -> str:
        """What the run left running (nothing may be: the graders reap what they start), a line each."""
        return "".join(f"\n     left running after pytest ended: {line}" for line in self.left)


def read_report(xml_path: Path, messages: dict[str, str] | None = None) -> tuple[dict[str, str], float]:
    """From a JUnit report: each test's outcome (test name, with parameters -> passed /
    failed / skipped), and the tests' own time added up; each failure's text into `messages`."""
    outcomes: dict[str, str] = {}
    if not xml_path.exists():
        return outcomes, 0.0
    seconds = 0.0
    for case in ET.parse(xml_path).iter("testcase"):
        seconds += float(case.get("time") or 0)
        classname = case.get("classname", "")
        name = f"{classname.rsplit('.', 1)[-1]}::{case.get('name')}" if classname else case.get("name", "")
        failure = case.find("failure") if case.find("failure") is not None else case.find("error")
        if failure is not None:
            text = failure.text or failure.get("message", "")
            outcome = "unmeasured" if text.lstrip().startswith(NOT_MEASURED) else "failed"
            if messages is not None and name not in messages:
                messages[name] = failure.text or failure.get("message", "")
        elif case.find("skipped") is not None:
            outcome = "skipped"
        else:
            outcome = "passed"
        # A teardown error is reported as a second entry: failed wins.
        if outcomes.get(name) != "failed":
            outcomes[name] = outcome
    return outcomes, seconds


def run_pytest(
    paths: list[str],
    impl: Path | str | None = None,
    args: list[str] = (),
    timeout: float = 600,
    root: Path | None = None,
) -> Run:
    """Run pytest on `paths` (relative to the course root) in a child process, the code of
    their topics under the guard, as grading runs it."""
    root = root or manifest.course_root()
    topics = sorted({t.id for t in map(manifest.topic_of_path, (p for p in paths if not p.startswith("-"))) if t})
    with tempfile.TemporaryDirectory(prefix="conclab-run-") as tmp:
        xml_path = Path(tmp) / "report.xml"
        refusals_log = Path(tmp) / "refusals.log"
        command = [
            sys.executable,
            "-m",
            "pytest",
            *paths,
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={xml_path}",
            "-o",
            "junit_family=xunit1",
            *args,
        ]
        if impl is not None:
            command.append(f"--impl={impl}")
        if topics:
            command += [f"--conclab-guard={','.join(topics)}", f"--conclab-guard-log={refusals_log}"]
        env = child_env(root)
        started = time.monotonic()
        left: list[str] = []
        returncode, output = run_in_own_group(command, root, env, timeout, left=left)
        duration = time.monotonic() - started
        messages: dict[str, str] = {}
        outcomes, test_time = read_report(xml_path, messages)
        return Run(returncode, outcomes, duration, output, test_time, left, guard.read_log(refusals_log), messages)


def test_name_matches(outcome_name: str, wanted: str) -> bool:
    """'test_x' matches 'module::test_x' and 'module::test_x[param]'."""
    name = outcome_name.rsplit("::", 1)[-1]
    return name == wanted or name.startswith(wanted + "[")


def check_mutant(mutant: Mutant, workdir: Path, args: list[str] = ()) -> tuple[bool, str, Run]:
    """Run the graders the mutant names (or the whole topic) on it: it must fail them all."""
    try:
        impl = make_mutant(mutant, workdir)
    except ValueError as exc:
        return False, str(exc), Run(-1, {}, 0.0, str(exc))
    selection = [f"graders/{mutant.topic.id}"]
    if mutant.catches:
        selection += ["-k", " or ".join(mutant.catches)]
    run = run_pytest(selection, impl=impl, args=list(args))
    if run.refused:
        return False, f"refused by the guard, so the graders were not what caught it: {run.refused[0]}", run
    if run.returncode not in (1,):
        return False, f"pytest exited with {run.returncode} (expected 1: tests failed)", run
    missing = [c for c in mutant.catches if not any(test_name_matches(n, c) for n in run.outcomes)]
    if missing:
        return False, f"no grader named {', '.join(missing)}", run
    # A parametrized grader catches the bug when any of its cases fails.
    escaped = [c for c in mutant.catches if not any(test_name_matches(n, c) for n in run.failed())]
    if escaped:
        return False, f"passed although they should catch the bug: {', '.join(escaped)}", run
    if mutant.public:
        public = run_pytest([f"exercises/{mutant.topic.id}", "-k", " or ".join(mutant.public)], impl=impl, args=args)
        escaped = [c for c in mutant.public if not any(test_name_matches(n, c) for n in public.failed())]
        if escaped or public.returncode != 1:
            return False, f"the lesson's bug passes the public tests {', '.join(escaped) or mutant.public}", public
        raw = {n: m for n, m in public.messages.items() if raw_pytest_words(m)}
        if raw:
            name, message = next(iter(raw.items()))
            return False, f"the public test {name} does not say it in plain words: {raw_pytest_words(message)}", public
    return True, f"{len(run.failed())} grader(s) failed", run


def raw_pytest_words(message: str) -> str:
    """What, in a failure's text, is pytest's or the course's code rather than words for the
    student (a traceback, an assert's rewritten expression, DID NOT RAISE), or ""."""
    for line in message.splitlines():
        if line.startswith(("Traceback", "E   ", ">   ")) or "DID NOT RAISE" in line or line.startswith("    def "):
            return line.strip()
        if re.match(r"^\S+\.py:\d+: ", line):
            return line.strip()
    return ""


def check_variant(variant: Mutant, workdir: Path, args: list[str] = ()) -> tuple[bool, str, Run]:
    """Run the topic's graders and public tests on a variant: it must pass them all."""
    try:
        impl = make_mutant(variant, workdir)
    except ValueError as exc:
        return False, str(exc), Run(-1, {}, 0.0, str(exc))
    run = run_pytest([f"graders/{variant.topic.id}", f"exercises/{variant.topic.id}"], impl=impl, args=args)
    if run.refused:
        return False, f"refused by the guard: {run.refused[0]}", run
    if not run.clean():
        return False, f"failed: {', '.join(run.failed()) or f'pytest exited with {run.returncode}'}", run
    return True, f"{len(run.passed())} passed{run.unmeasured_text()}", run


def mutant_budget(mutant: Mutant) -> float:
    """How long the graders may take to catch a mutant: the topic's budget for each grader
    it names (each may run out of time), and some start-up."""
    return mutant.topic.budget * max(1, len(mutant.catches)) + 10


def _check_once(topics: list[manifest.Topic], kinds: list[str], args: list[str], names: list[str] = ()) -> int:
    """One round of checks; prints a line per check and returns how many failed."""
    failures = 0
    label = f" ({' '.join(args)})" if args else ""
    if "solutions" in kinds:
        paths = [f"graders/{t.id}" for t in topics] + [f"exercises/{t.id}" for t in topics]
        run = run_pytest(paths, impl=manifest.course_root() / "solutions", args=args)
        ok = run.clean() and not run.left and not run.refused
        failures += not ok
        print(
            f"{'ok  ' if ok else 'FAIL'} solutions pass{label}   {run.duration:6.1f} s  "
            f"{len(run.passed())} passed, {len(run.failed())} failed{run.unmeasured_text()}{run.left_text()}",
            flush=True,
        )
        if not ok:
            print("\n".join(run.refused) or run.output[-3000:])
    if "stubs" in kinds:
        for topic in topics:
            run = run_pytest([f"graders/{topic.id}"], args=args)
            ok = run.returncode == 1 and not run.passed() and not run.left and not run.refused
            failures += not ok
            print(
                f"{'ok  ' if ok else 'FAIL'} stub {topic.id:<22} {run.duration:6.1f} s  "
                f"{len(run.failed())} failed, {len(run.passed())} passed{label}{run.left_text()}",
                flush=True,
            )
            if not ok:
                print(f"     passed on the stub: {', '.join(run.passed()) or '-'}\n{run.output[-3000:]}", flush=True)
    for kind, load, check in (("mutant", load_mutants, check_mutant), ("variant", load_variants, check_variant)):
        if kind + "s" not in kinds:
            continue
        for entry in (e for e in load() if e.topic in topics and (not names or e.name in names)):
            with tempfile.TemporaryDirectory(prefix=f"conclab-{kind}-") as tmp:
                ok, why, run = check(entry, Path(tmp), args)
            if ok and kind == "mutant" and run.test_time >= mutant_budget(entry):
                ok, why = False, f"caught, but only after {run.test_time:.1f} s (budget {mutant_budget(entry):g} s)"
            if run.left:
                ok, why = False, why + run.left_text()
            failures += not ok
            print(
                f"{'ok  ' if ok else 'FAIL'} {kind} {entry.id:<{57 - len(kind)}} {run.duration:6.1f} s  {why}{label}",
                flush=True,
            )
    return failures


def register(commands) -> None:
    parser = commandline.command(
        commands,
        "check",
        run,
        "the course's own checks: solutions pass, stubs fail, every mutant is caught, every variant passes",
        "Check that every solution passes, every untouched stub fails, every mutant "
        "(tests/mutants/) is caught\nand every variant (tests/variants/) passes, each in a "
        "pytest run of its own.",
    )
    parser.add_argument(
        "--runs", type=commandline.at_least_one, default=1, metavar="N", help="repeat every check N times (default 1)"
    )
    commandline.add_topics(parser, "only the checks of this topic")
    parser.add_argument("--load", action="store_true", help="keep one CPU busy with another process meanwhile")
    parser.add_argument(
        "--only",
        choices=KINDS,
        action="append",
        default=[],
        help="only this kind of check (repeatable; default: every kind)",
    )
    parser.add_argument(
        "--name",
        action="append",
        default=[],
        metavar="NAME",
        help="only the mutants and variants of this name (repeatable)",
    )
    commandline.add_start_method(parser, repeatable=True)


KINDS = ("solutions", "stubs", "mutants", "variants")


def run(options) -> int:
    topics = commandline.topics(options.topic)
    kinds = options.only or list(KINDS)
    known = {e.name for e in load_mutants() + load_variants() if e.topic in topics}
    unknown = sorted(set(options.name) - known)
    if unknown:
        raise commandline.UsageError(f"--name {unknown[0]}: no mutant or variant of the chosen topics has that name")
    cleanup.exit_on_sigterm()  # a plain `kill` still ends the pytest runs and the CPU hog
    hog = None
    if options.load:
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    failures = 0
    try:
        for _ in range(options.runs):
            for method in options.start_method or [None]:
                failures += _check_once(topics, kinds, ["--start-method", method] if method else [], options.name)
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    print(f"{failures} check(s) failed")
    return 1 if failures else 0
