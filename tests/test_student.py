"""The student's commands (list, check, hint, reset, watch), run in a student's copy of the
course as `conclab release` writes it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from conclab import manifest
from conclab.core import cleanup
from conclab.grading import runner
from conclab.ship import release
from conclab.student import work as student

ROOT = manifest.course_root()
TOPICS = manifest.topics()


@pytest.fixture
def course(tmp_path) -> Path:
    out = tmp_path / "course"
    release.release(out)
    return out


def env_for(course: Path) -> dict[str, str]:
    return {**runner.child_env(course), "PYTHONUNBUFFERED": "1", "COLUMNS": "100"}


def conclab(course: Path, *args: str, stdin: str = "", timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "conclab", *args],
        cwd=course,
        env=env_for(course),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def solve(course: Path, topic_id: str) -> Path:
    topic = manifest.find(topic_id)
    return Path(shutil.copy(ROOT / "solutions" / topic.id / topic.filename, student.module_path(topic, course)))


def public_tests(topic_id: str) -> int:
    topic = manifest.find(topic_id)
    return (ROOT / "exercises" / topic.id / f"test_{topic.module}.py").read_text().count("\ndef test_")


def row(listing: str, topic_id: str) -> str:
    return next(line for line in listing.splitlines() if line.startswith(topic_id + " "))


def test_list_of_a_fresh_copy_shows_every_topic_not_started(course):
    started = time.monotonic()
    run = conclab(course, "list")
    assert run.returncode == 0, run.stderr
    assert time.monotonic() - started < 30  # nothing to run: no topic was touched
    for topic in TOPICS:
        assert "not started" in row(run.stdout, topic.id) and row(run.stdout, topic.id).endswith(str(topic.points))
    assert f"0 of {len(TOPICS)} topics pass their public tests" in run.stdout
    assert f"Next: {TOPICS[0].id}" in run.stdout and f"conclab check {TOPICS[0].number}" in run.stdout


def test_check_of_a_solved_topic_passes_names_the_next_and_list_remembers_it(course):
    solve(course, "02")
    run = conclab(course, "check", "02")
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"All {public_tests('02')} public tests pass." in run.stdout and "Next: 03_condition" in run.stdout
    listing = conclab(course, "list").stdout
    assert "passing" in row(listing, "02_locks") and "not started" in row(listing, "01_threads")
    assert f"1 of {len(TOPICS)} topics pass" in listing
    assert (course / student.PROGRESS_FILE).is_file()


def test_check_explains_the_first_problem_and_offers_a_hint(course):
    run = conclab(course, "check", "07_deadlock")
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"0 of {public_tests('07')} public tests pass." in run.stdout
    first = run.stdout.split("The first problem, in ")[1]
    assert first.startswith('"dine"') and "Deadlock" in first and "waiting at philosophers.py line" in first
    assert "Your code: exercises/07_deadlock/philosophers.py" in run.stdout
    assert "`conclab hint 07` gives a hint (0 of 5 seen)" in run.stdout


def test_list_checks_the_topics_changed_since_their_last_check(course):
    module = solve(course, "01")
    module.write_text(module.read_text().replace(".start()", ".run()", 1))  # a bug
    listing = conclab(course, "list")
    assert "failing" in row(listing.stdout, "01_threads"), listing.stdout + listing.stderr
    solve(course, "01")
    assert "passing" in row(conclab(course, "list").stdout, "01_threads")


def test_hint_gives_one_more_each_time_and_all_shows_those_seen(course):
    topic = manifest.find("03")
    assert "No hints of 03_condition seen yet" in conclab(course, "hint", "03", "--all").stdout
    first = conclab(course, "hint", "condition").stdout
    assert f"Hint 1 of {len(topic.hints)}" in first and topic.hints[0][:40] in first
    second = conclab(course, "hint", "3").stdout
    assert f"Hint 2 of {len(topic.hints)}" in second and "Hint 1" not in second
    seen = conclab(course, "hint", "03", "--all").stdout
    assert "Hint 1 of" in seen and "Hint 2 of" in seen and "Hint 3 of" not in seen
    for _ in topic.hints:
        last = conclab(course, "hint", "03").stdout
    assert f"Hint {len(topic.hints)} of {len(topic.hints)}" in last and "That is the last hint" in last
    assert conclab(course, "hint", "04").stdout.count("Hint 1 of") == 1  # remembered per topic
    assert "(5 of 5 seen)" not in conclab(course, "check", "03").stdout


def test_reset_asks_first_and_puts_the_original_stub_back(course):
    topic = manifest.find("03")
    module = student.module_path(topic, course)
    stub = module.read_text()
    module.write_text("my work\n")
    refused = conclab(course, "reset", "03", stdin="n\n")
    assert refused.returncode == 1 and "Nothing changed." in refused.stdout and module.read_text() == "my work\n"
    assert conclab(course, "reset", "03").returncode == 1 and module.read_text() == "my work\n"  # no answer: no
    done = conclab(course, "reset", "03", stdin="y\n")
    assert done.returncode == 0 and module.read_text() == stub, done.stdout + done.stderr
    module.write_text("more work\n")
    assert conclab(course, "reset", "03_condition", "--yes").returncode == 0 and module.read_text() == stub
    again = conclab(course, "reset", "03", "--yes")
    assert again.returncode == 0 and "already the original stub" in again.stdout


def test_bad_input_gets_a_clear_error_and_changes_nothing(course, tmp_path):
    module = student.module_path(TOPICS[0], course)
    module.write_text("my work\n")
    for args in (["check", "99"], ["hint", "nonsense"], ["reset", "15", "--yes"], ["watch", "zz"]):
        run = conclab(course, *args)
        assert run.returncode == 2 and "no topic" in run.stderr, (args, run.stderr)
    assert module.read_text() == "my work\n" and not (course / student.PROGRESS_FILE).exists()
    shutil.rmtree(course / student.STUBS)  # a copy of the course without the original stubs, not in git
    run = conclab(course, "reset", "01", "--yes")
    assert run.returncode == 2 and "cannot find the original stub" in run.stderr and module.read_text() == "my work\n"


class Screen:
    """The output of a running command, line by line, with the time each line arrived."""

    def __init__(self, proc: subprocess.Popen):
        self.lines: list[tuple[float, str]] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, args=(proc.stdout,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            with self._changed:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self._changed.notify_all()

    def wait_for(self, text: str, after: int = 0, within: float = 60) -> tuple[int, float]:
        """(index, arrival time) of the first line from `after` on that holds `text`."""

        def found():
            return next(((i, t) for i, (t, line) in enumerate(self.lines) if i >= after and text in line), None)

        with self._changed:
            self._changed.wait_for(lambda: found() is not None, within)
            result = found()
            assert result, f"{text!r} did not appear within {within} s:\n" + "\n".join(line for _, line in self.lines)
        return result


@contextlib.contextmanager
def watching(course: Path, *args: str):
    """`conclab watch` running in the course, and its screen; killed at the end whatever happens."""
    # Ctrl-C as in a terminal, even when this test runs where SIGINT is ignored (a background job).
    proc = subprocess.Popen(
        [sys.executable, "-m", "conclab", "watch", *args],
        cwd=course,
        env=env_for(course),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        yield proc, Screen(proc)
    finally:
        proc.kill()
        proc.wait()


def press_ctrl_c(proc: subprocess.Popen, screen: Screen, at: int) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        assert proc.wait(30) == 0
    except subprocess.TimeoutExpired:
        pytest.fail("watch was still running 30 s after Ctrl-C:\n" + "\n".join(line for _, line in screen.lines))
    screen.wait_for("Stopped watching", after=at, within=5)


@pytest.mark.skipif(os.name == "nt", reason="ends the command with SIGINT, as Ctrl-C does")
def test_watch_rechecks_on_save_within_a_second_and_moves_on_when_the_topic_passes(course, no_process_left):
    module = student.module_path(TOPICS[0], course)
    with watching(course) as (proc, screen):
        at, _ = screen.wait_for(f"Next: {TOPICS[0].id}")  # nothing touched yet: it says where to start
        time.sleep(0.5)  # the watcher is set up once it has drawn its first screen
        saved = time.monotonic()
        module.write_text(module.read_text() + "\n# a first try\n")
        at, noticed = screen.wait_for("Saved exercises/01_threads/threads.py", after=at)
        print(f"the save was noticed after {noticed - saved:.3f} s")
        assert noticed - saved < 1.0, f"the save was noticed after {noticed - saved:.2f} s"
        at, _ = screen.wait_for("public tests pass", after=at)
        assert f"0 of {public_tests('01')} public tests pass" in screen.lines[at][1]
        solve(course, "01")
        at, _ = screen.wait_for(f"All {public_tests('01')} public tests pass", after=at)
        at, _ = screen.wait_for(f"On to {TOPICS[1].id}", after=at)
        press_ctrl_c(proc, screen, at)


def pytest_processes(proc: subprocess.Popen) -> list[psutil.Process]:
    """The pytest runs below a process, and what they started."""
    return [p for p in psutil.Process(proc.pid).children(recursive=True) if "pytest" in " ".join(p.cmdline())]


@pytest.mark.skipif(os.name == "nt", reason="ends the command with SIGINT, as Ctrl-C does")
def test_watch_stops_tests_that_a_newer_save_makes_out_of_date(course, no_process_left):
    """The stub of 10 deadlocks: its public tests wait about 25 s.  A save meanwhile stops
    them at once (their processes gone) and checks the new version; the old result is never
    shown.  Ctrl-C in the middle of a check ends its processes too."""
    topic = manifest.find("10")
    module = student.module_path(topic, course)
    stub = module.read_text()
    with watching(course, "10") as (proc, screen):
        at, _ = screen.wait_for(f"Next: {topic.id}")
        time.sleep(0.5)
        module.write_text(stub + "\n# a first try\n")
        at, _ = screen.wait_for(f"running the public tests of {topic.id}", after=at)
        time.sleep(2)  # into the first test's wait on the deadlock
        stale = pytest_processes(proc)
        assert stale, "the check of the stub was not running"
        solve(course, "10")
        at, _ = screen.wait_for("were stopped", after=at)
        assert not [p for p in stale if cleanup.running(p)], "the out-of-date tests were still running"
        at, _ = screen.wait_for(f"All {public_tests('10')} public tests pass", after=at)
        shown = [line for _, line in screen.lines if "public tests pass" in line]
        assert len(shown) == 1, f"results shown: {shown}"
        module.write_text(stub + "\n# back to the start\n")
        at, _ = screen.wait_for(f"running the public tests of {topic.id}", after=at)
        time.sleep(2)
        checking = pytest_processes(proc)
        assert checking, "the check of the stub was not running"
        press_ctrl_c(proc, screen, at)  # in the middle of a check: its processes go too
        assert not [p for p in checking if cleanup.running(p)], "Ctrl-C left the tests running"


class Terminal:
    """A command line in a tmux session of its own: type into it, read its screen."""

    def __init__(self, socket: Path, cwd: Path, env: dict[str, str]):
        self.socket = socket
        shell = ["bash", "--norc", "--noprofile"]
        variables = [
            arg for name in ("PATH", "HOME", "CONCLAB_ROOT") if name in env for arg in ("-e", f"{name}={env[name]}")
        ]
        self.tmux(
            "new-session",
            "-d",
            "-s",
            "main",
            "-x",
            "110",
            "-y",
            "45",
            "-c",
            str(cwd),
            *variables,
            "env",
            "TERM=xterm-256color",
            "PS1=$ ",
            *shell,
        )

    def tmux(self, *args: str) -> str:
        run = subprocess.run(["tmux", "-S", str(self.socket), *args], capture_output=True, text=True, timeout=30)
        assert run.returncode == 0, run.stderr
        return run.stdout

    def type(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "main", *keys)

    def screen(self, colours: bool = False) -> str:
        return self.tmux("capture-pane", "-p", *(["-e"] if colours else []), "-t", "main")

    def wait_for(self, text: str, within: float = 60) -> str:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} did not appear on the screen within {within} s:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "-S", str(self.socket), "kill-server"], capture_output=True, timeout=30)


@pytest.fixture
def terminal(course, tmp_path):
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    env = {**env_for(course), "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])}
    term = Terminal(tmp_path / "tmux.sock", course, env)
    term.wait_for("$")
    yield term
    term.close()


def test_the_commands_in_a_real_terminal(course, terminal):
    command = f"{sys.executable} -m conclab"
    terminal.type(f"{command} list", "Enter")
    terminal.wait_for("topics pass their public tests")
    colours = terminal.screen(colours=True)
    assert "\x1b[" in colours and "░" in colours, colours  # colour, and the bar drawn in blocks on a terminal

    terminal.type(f"{command} hint 01", "Enter")
    terminal.wait_for("Hint 1 of")

    module = student.module_path(TOPICS[0], course)
    terminal.type(f"{command} watch", "Enter")
    terminal.wait_for(f"Next: {TOPICS[0].id}")
    solution = (ROOT / "solutions" / TOPICS[0].id / TOPICS[0].filename).read_text()
    joined_at_once = solution.replace(
        "        thread.start()\n    for thread in threads:\n", "        thread.start()\n"
    )
    module.write_text(joined_at_once)
    screen = terminal.wait_for("one after another")  # the functions ran one after another: a timeline shows it
    assert "FAIL run all runs the functions at the same time" in screen and "conclab watch" in screen.splitlines()[0]
    assert "Hint 1 of" not in screen and "Read exercises/" not in screen  # cleared and redrawn
    module.write_text(solution)
    terminal.wait_for(f"On to {TOPICS[1].id}")
    terminal.type("C-c")
    terminal.wait_for("Stopped watching")

    module.write_text("my work\n")
    terminal.type(f"{command} reset 01", "Enter")
    terminal.wait_for("[y/N]")
    terminal.type("y", "Enter")
    terminal.wait_for("is the original stub again")
    assert module.read_text() == student.original_stub(TOPICS[0], course)


def test_a_damaged_progress_file_is_a_fresh_start(course):
    for text in ("{not json", "[1, 2]", '{"hints": [3], "checks": "x"}', '{"hints": {"03_condition": "many"}}'):
        (course / student.PROGRESS_FILE).write_text(text)
        run = conclab(course, "hint", "03")
        assert run.returncode == 0 and "Hint 1 of" in run.stdout, (text, run.stdout + run.stderr)


def test_long_lines_break_between_words_on_a_terminal_and_stay_whole_elsewhere():
    import io

    from rich.console import Console

    from conclab.student import screens

    message = (
        "The 3 functions should run at the same time; at most 1 ran together. Start every thread before "
        "you join any.\n    Thread-1  ████████··········\n"
    )
    terminal = Console(file=io.StringIO(), force_terminal=True, width=40, color_system=None)
    lines = screens._indented(terminal, message).plain.splitlines()
    assert all(len(line) <= 40 for line in lines), lines
    assert lines[0].startswith("    The 3") and all(line.startswith("    ") for line in lines), lines
    assert " ".join(line.strip() for line in lines[:-1]) == message.splitlines()[0]  # no word cut in two
    assert lines[-1] == "        Thread-1  ████████··········"
    pipe = Console(file=io.StringIO(), force_terminal=False, width=40)
    assert screens._indented(pipe, message).plain.splitlines()[0] == "    " + message.splitlines()[0]
