"""The GitHub Classroom autograding workflow (.github/workflows/classroom.yml), generated
from the manifest: `conclab dev workflow` writes it, `conclab dev workflow --check` fails
when the committed file is out of date.

One classroom-resources/autograding-command-grader@v1 step per topic, worth the topic's
points, then the reporter.  The command grader passes only PATH and HOME to the command
and looks only at its exit status: `conclab grade --topic NN` exits 0 only when every
grader of the topic passed.  The hidden graders come from the instructor's private
repository (secrets CONCLAB_GRADERS_REPO, owner/name, and CONCLAB_GRADERS_TOKEN) when
both are set; otherwise the graders in the student's repository are used.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from conclab import commandline, manifest
from conclab.grading import grade
from conclab.templating import fill

TEMPLATES = Path(__file__).with_name("templates")

PATH = Path(".github") / "workflows" / "classroom.yml"
PYTHON = "3.12"


def step_id(topic: manifest.Topic) -> str:
    return f"topic-{topic.id.replace('_', '-')}"


def timeout_minutes(topic: manifest.Topic) -> int:
    return math.ceil(grade.topic_timeout(topic) / 60) + 1


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(topics: list[manifest.Topic] | None = None) -> str:
    """The workflow: templates/classroom.yml, with a step per topic (templates/classroom-step.yml)
    and each step's result handed to the reporter (templates/classroom-result.yml)."""
    topics = list(topics or manifest.topics())
    steps = "".join(
        fill(
            TEMPLATES / "classroom-step.yml",
            name=_quote(topic.id),
            id=step_id(topic),
            test_name=_quote(f"{topic.id}: {topic.title}"),
            # exec: the grader's time limit sends SIGTERM to the shell; conclab must be the one to get it
            command=_quote(f"exec .venv/bin/conclab grade --topic {topic.id} --jobs 1"),
            timeout=timeout_minutes(topic),
            points=topic.points,
        )
        for topic in topics
    )
    results = "".join(
        fill(TEMPLATES / "classroom-result.yml", variable=step_id(topic).upper(), id=step_id(topic)) for topic in topics
    )
    return fill(
        TEMPLATES / "classroom.yml",
        python=_quote(PYTHON),
        steps=steps.rstrip("\n"),
        results=results.rstrip("\n"),
        runners=",".join(step_id(t) for t in topics),
    )


def register(commands) -> None:
    parser = commandline.command(
        commands, "workflow", run, "write the Classroom workflow from the manifest", __doc__.split("\n\n")[0]
    )
    parser.add_argument("--check", action="store_true", help="only check that the committed file is up to date")


def run(options) -> int:
    target = manifest.course_root() / PATH
    text = render()
    current = target.read_text(encoding="utf-8") if target.exists() else None
    if options.check:
        if current != text:
            print(f"{PATH} is out of date with the manifest: run `conclab dev workflow`", file=sys.stderr)
            return 1
        print(f"{PATH} is up to date")
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    print(f"wrote {PATH} ({len(manifest.topics())} topics)")
    return 0
