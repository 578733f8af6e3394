"""The `conclab` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import devcheck, manifest


def _grade(options: argparse.Namespace) -> int:
    try:
        topics = [manifest.find(t) for t in options.topic] or list(manifest.topics())
    except manifest.ManifestError as exc:
        print(f"conclab grade: {exc}", file=sys.stderr)
        return 2
    root = manifest.course_root()
    impl = Path(options.impl).resolve() if options.impl else root / "exercises"
    if not impl.is_dir():
        print(f"conclab grade: --impl {options.impl}: no such folder", file=sys.stderr)
        return 2
    print(f"Grading {impl}")
    total = maximum = 0.0
    all_passed = True
    for topic in topics:
        run = devcheck.run_pytest([f"graders/{topic.id}"], impl=impl, root=root,
                                  timeout=max(120.0, topic.budget * 40))
        tests = len(run.outcomes)
        passed = len(run.passed())
        if run.returncode not in (0, 1) or tests == 0:
            score, status = 0.0, "error"
        else:
            score = topic.points * passed / tests
            status = "pass" if run.returncode == 0 else "fail"
        all_passed &= status == "pass"
        total += score
        maximum += topic.points
        print(f"  {topic.id:<22} {status:<5} {score:5.1f} / {topic.points:<3} ({passed}/{tests} tests, "
              f"{run.duration:.1f} s)", flush=True)
    print(f"  {'total':<22} {'':<5} {total:5.1f} / {maximum:g}")
    return 0 if all_passed else 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["dev", "check"]:
        return devcheck.main(argv[2:])
    if argv[:2] == ["dev", "bench"]:
        from . import bench
        return bench.main(argv[2:])
    parser = argparse.ArgumentParser(prog="conclab", description="concurrency-lab: exercises in Python concurrency")
    commands = parser.add_subparsers(dest="command", required=True)
    grade = commands.add_parser("grade", help="grade the exercises (or --impl DIR) topic by topic")
    grade.add_argument("--impl", metavar="DIR", help="folder of topic folders to grade (default: exercises/)")
    grade.add_argument("--topic", metavar="NN", action="append", default=[], help="only this topic (repeatable)")
    commands.add_parser("dev", help="`conclab dev check`: the course's own checks (solutions, stubs, mutants, "
                                    "variants); `conclab dev bench`: parallel speed-ups of the solutions")
    options = parser.parse_args(argv)
    if options.command == "grade":
        return _grade(options)
    parser.error("use `conclab dev check` or `conclab dev bench`")
    return 2


if __name__ == "__main__":
    sys.exit(main())
