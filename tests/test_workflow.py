"""The Classroom workflow is generated from the manifest and kept up to date."""

from __future__ import annotations

import json
import re

from conclab import grading, manifest, workflow

ROOT = manifest.course_root()
TOPICS = manifest.topics()


def committed() -> str:
    return (ROOT / workflow.PATH).read_text(encoding="utf-8")


def test_the_committed_workflow_is_the_one_the_manifest_gives():
    assert committed() == workflow.render(), "run `conclab dev workflow` after changing the manifest"


def test_a_grading_step_per_topic_worth_its_points():
    text = committed()
    steps = re.findall(r'- name: "(\S+)"\n\s+id: (\S+)\n\s+uses: classroom-resources/autograding-command-grader@v1\n'
                       r'\s+with:\n\s+test-name: (".*")\n\s+command: (".*")\n\s+timeout: (\d+)\n\s+max-score: (\d+)',
                       text)
    assert [s[0] for s in steps] == [t.id for t in TOPICS]
    for (name, step_id, test_name, command, timeout, max_score), topic in zip(steps, TOPICS):
        assert json.loads(command) == f".venv/bin/conclab grade --topic {topic.id} --jobs 1"
        assert int(max_score) == topic.points
        assert int(timeout) * 60 > grading.topic_timeout(topic)  # the step outlasts conclab's own limit
        assert f"{step_id.upper()}_RESULTS: \"${{{{ steps.{step_id}.outputs.result }}}}\"" in text
    runners = re.search(r"runners: (\S+)", text).group(1).split(",")
    assert runners == [s[1] for s in steps]


def test_the_hidden_graders_token_never_reaches_a_command():
    text = committed()
    assert text.count("secrets.CONCLAB_GRADERS_TOKEN") == 2  # the check, and the checkout of the private repository
    assert "persist-credentials: false" in text
