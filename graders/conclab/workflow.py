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

from . import grading, manifest

PATH = Path(".github") / "workflows" / "classroom.yml"
PYTHON = "3.12"


def step_id(topic: manifest.Topic) -> str:
    return f"topic-{topic.id.replace('_', '-')}"


def timeout_minutes(topic: manifest.Topic) -> int:
    return math.ceil(grading.topic_timeout(topic) / 60) + 1


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(topics: list[manifest.Topic] | None = None) -> str:
    topics = list(topics or manifest.topics())
    lines = [
        "# Generated from graders/conclab/topics.toml by `conclab dev workflow`: edit the manifest, not this file.",
        "name: Autograding Tests",
        "on:",
        "  push:",
        "  repository_dispatch:",
        "  workflow_dispatch:",
        "permissions:",
        "  checks: write",
        "  actions: read",
        "  contents: read",
        "jobs:",
        "  run-autograding-tests:",
        "    runs-on: ubuntu-latest",
        "    if: github.actor != 'github-classroom[bot]'",
        "    steps:",
        "      - name: Check out the submission",
        "        uses: actions/checkout@v4",
        "      - name: Look for the instructor's hidden graders",
        "        id: hidden",
        "        env:",
        "          TOKEN: ${{ secrets.CONCLAB_GRADERS_TOKEN }}",
        "          REPO: ${{ secrets.CONCLAB_GRADERS_REPO }}",
        "        run: |",
        '          if [ -n "$TOKEN" ] && [ -n "$REPO" ]; then',
        '            echo "found=true" >> "$GITHUB_OUTPUT"',
        "          else",
        '            echo "No CONCLAB_GRADERS_REPO and CONCLAB_GRADERS_TOKEN: grading with the graders in this repository."',
        "          fi",
        "      - name: Check out the hidden graders",
        "        if: steps.hidden.outputs.found == 'true'",
        "        uses: actions/checkout@v4",
        "        with:",
        "          repository: ${{ secrets.CONCLAB_GRADERS_REPO }}",
        "          token: ${{ secrets.CONCLAB_GRADERS_TOKEN }}",
        "          path: .conclab-hidden",
        "          persist-credentials: false",
        "      - name: Use the hidden graders",
        "        if: steps.hidden.outputs.found == 'true'",
        "        run: |",
        "          rm -rf graders",
        "          cp -R .conclab-hidden/graders graders",
        "          rm -rf .conclab-hidden",
        "      - name: Set up Python",
        "        uses: actions/setup-python@v5",
        "        with:",
        f"          python-version: {_quote(PYTHON)}",
        "      - name: Install the grading machinery",
        "        run: python -m venv .venv && .venv/bin/pip install -q -e .",
    ]
    for topic in topics:
        lines += [
            f"      - name: {_quote(topic.id)}",
            f"        id: {step_id(topic)}",
            "        uses: classroom-resources/autograding-command-grader@v1",
            "        with:",
            f"          test-name: {_quote(f'{topic.id}: {topic.title}')}",
            # exec: the grader's time limit sends SIGTERM to the shell; conclab must be the one to get it
            f"          command: {_quote(f'exec .venv/bin/conclab grade --topic {topic.id} --jobs 1')}",
            f"          timeout: {timeout_minutes(topic)}",
            f"          max-score: {topic.points}",
        ]
    lines += [
        "      - name: Autograding Reporter",
        "        uses: classroom-resources/autograding-grading-reporter@v1",
        "        env:",
    ]
    for topic in topics:
        lines.append(f"          {step_id(topic).upper()}_RESULTS: \"${{{{ steps.{step_id(topic)}.outputs.result }}}}\"")
    lines += [
        "        with:",
        f"          runners: {','.join(step_id(t) for t in topics)}",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="conclab dev workflow", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check that the committed file is up to date")
    options = parser.parse_args(argv)
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
