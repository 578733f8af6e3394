"""The machine lock is the user's own: another user's folder or runs never get in the way,
and public tests never wait for a grading run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from conclab import manifest
from conclab.core import machine

ROOT = manifest.course_root()
posix_locks = pytest.mark.skipif(machine.fcntl is None or not hasattr(os, "getuid"), reason="POSIX locks")


def _chosen(tmp_path, monkeypatch) -> str:
    monkeypatch.delenv(machine.FOLDER_VARIABLE, raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(machine.tempfile, "gettempdir", lambda: str(tmp_path))
    return machine._choose()


@posix_locks
def test_the_lock_folder_is_the_users_and_nobody_elses(tmp_path, monkeypatch):
    folder = _chosen(tmp_path, monkeypatch)
    assert folder == str(tmp_path / f"conclab-locks-{os.getuid()}")
    assert (os.stat(folder).st_mode & 0o777) == 0o700


@posix_locks
def test_a_folder_open_to_others_is_closed_first(tmp_path, monkeypatch):
    path = tmp_path / f"conclab-locks-{os.getuid()}"
    path.mkdir(mode=0o777)
    os.chmod(path, 0o777)
    assert _chosen(tmp_path, monkeypatch) == str(path)
    assert (os.stat(path).st_mode & 0o777) == 0o700


@posix_locks
@pytest.mark.parametrize("kind", ["file", "symlink", "other_user"])
def test_a_folder_that_is_not_the_users_is_passed_over(tmp_path, monkeypatch, kind):
    path = tmp_path / f"conclab-locks-{os.getuid()}"
    if kind == "file":
        path.write_text("")
    elif kind == "symlink":
        (tmp_path / "elsewhere").mkdir()
        path.symlink_to(tmp_path / "elsewhere")
    else:
        if os.getuid() != 0:
            pytest.skip("only root can give a folder to another user")
        path.mkdir(mode=0o755)
        os.chown(path, 65534, 65534)
    folder = _chosen(tmp_path, monkeypatch)
    assert folder == str(tmp_path / "home" / ".cache" / "conclab-locks")
    monkeypatch.setattr(machine, "_FOLDER", folder)
    with machine.share(alone=True):
        assert os.path.isfile(os.path.join(folder, "run"))
    assert (os.stat(os.path.join(folder, "run")).st_mode & 0o777) == 0o600


def _child_env(locks) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "COV_"))}
    env[machine.FOLDER_VARIABLE] = str(locks)
    return env


@posix_locks
def test_public_tests_do_not_wait_for_a_grading_run(tmp_path, monkeypatch):
    """While a timing grader holds the machine, the public tests of 01 run at once."""
    locks = tmp_path / "locks"
    monkeypatch.setattr(machine, "_FOLDER", str(locks))
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "exercises/01_threads"]
    command.append(f"--impl={ROOT / 'solutions'}")
    with machine.share(alone=True):
        started = time.monotonic()
        # Waiting for the lock would last until it is released (this test would time out
        # first): 120 s is only a bound on a slow machine, far below machine.MAX_WAIT.
        done = subprocess.run(command, cwd=ROOT, env=_child_env(locks), capture_output=True, text=True, timeout=120)
        took = time.monotonic() - started
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert took < 120


@posix_locks
def test_graders_do_wait_for_a_timing_grader(tmp_path, monkeypatch):
    """The other side: a grader waits while a test marked alone holds the machine."""
    locks = tmp_path / "locks"
    monkeypatch.setattr(machine, "_FOLDER", str(locks))
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "graders/01_threads", "-k"]
    command += ["test_start_daemon_returns_a_started_daemon_thread", f"--impl={ROOT / 'solutions'}"]
    with machine.share(alone=True):
        child = subprocess.Popen(command, cwd=ROOT, env=_child_env(locks), stdout=subprocess.PIPE, text=True)
        try:
            with pytest.raises(subprocess.TimeoutExpired):
                child.wait(timeout=15)  # still waiting for the machine
        except BaseException:
            child.kill()
            child.wait()
            raise
    out, _ = child.communicate(timeout=120)
    assert child.returncode == 0, out[-2000:]


@posix_locks
@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0 or not shutil.which("setpriv"), reason="needs root")
def test_another_user_on_the_same_machine_is_not_in_the_way(tmp_path):
    """Another user (nobody) takes the machine while this one holds it: no error, no wait."""
    script = (
        "import time\nfrom conclab.core import machine\nstarted = time.monotonic()\n"
        "with machine.share(alone=True):\n    print(machine.folder(), round(time.monotonic() - started, 1))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in (machine.FOLDER_VARIABLE, "HOME", "XDG_RUNTIME_DIR")}
    env["HOME"] = "/nonexistent"
    with machine.share(alone=True):
        done = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", script],
            cwd="/",
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    folder, waited = done.stdout.split()
    assert folder != machine.folder() and float(waited) < 60, done.stdout
