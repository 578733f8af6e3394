"""What a grading run starts ends with it, however it left: below the run, in its process
group, by its mark, and (Linux) by the grading command being the reaper of every orphan below
it.  And nothing that outlives a test holds the machine's timing locks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from conclab.core import machine, pipes

# A run that leaves all three ways of finding what it started: a double fork into a session of
# its own, and then a program with an empty environment (so no mark), adopted once its parent
# has ended.  It writes the pid of that program to the file named in argv[1].
ESCAPE = textwrap.dedent(
    """
    import os, sys
    if os.fork() == 0:
        os.setsid()
        pid = os.fork()
        if pid == 0:
            os.execve(sys.executable, [sys.executable, "-c", "import time; time.sleep(120)"], {})
        with open(sys.argv[1], "w") as f:
            f.write(str(pid))
        os._exit(0)
    os.wait()
    """
)

# Runs ESCAPE as a grading command runs its runs, and says whether the program that escaped
# is still running once the run has been ended.
GRADING = textwrap.dedent(
    """
    import json, os, sys
    import psutil
    from conclab.grading import runner
    reaper = runner.become_reaper() if sys.argv[3] == "reaper" else False
    returncode, output = runner.run_in_own_group(
        [sys.executable, "-c", sys.argv[1], sys.argv[2]], os.getcwd(), dict(os.environ), 60
    )
    pid = int(open(sys.argv[2]).read())
    alive = psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    print(json.dumps({"reaper": reaper, "returncode": returncode, "pid": pid, "alive": alive}))
    """
)


def _escape(tmp_path, mode: str) -> dict:
    run = subprocess.run(
        [sys.executable, "-c", GRADING, ESCAPE, str(tmp_path / f"pid-{mode}"), mode],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a child subreaper is Linux's")
def test_a_process_that_escapes_group_tree_and_mark_is_still_ended_by_the_reaper(tmp_path):
    without = _escape(tmp_path, "plain")
    try:
        # the other three ways alone do not find it (so the reaper is what ends it below)
        assert without["returncode"] == 0 and without["alive"], without
    finally:
        try:
            psutil.Process(without["pid"]).kill()
        except psutil.Error:
            pass
    with_reaper = _escape(tmp_path, "reaper")
    assert with_reaper["reaper"] and with_reaper["returncode"] == 0, with_reaper
    assert not with_reaper["alive"], f"process {with_reaper['pid']} escaped the grading run and is still running"


@pytest.mark.skipif(not hasattr(os, "fork") or machine.fcntl is None, reason="POSIX locks and fork")
def test_a_process_forked_during_a_test_does_not_hold_the_machine_after_it(tmp_path, monkeypatch):
    import fcntl

    monkeypatch.setattr(machine, "_FOLDER", str(tmp_path / "locks"))
    started, ready = os.pipe()
    with machine.share(alone=False):
        child = os.fork()
        if child == 0:  # a process left behind that lives on after the test
            os.write(ready, b"1")
            time.sleep(30)
            os._exit(0)
    os.read(started, 1)  # the child is past its fork
    os.close(started)
    os.close(ready)
    try:
        fd = os.open(tmp_path / "locks" / "run", os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if the child still shares it
        finally:
            os.close(fd)
    finally:
        os.kill(child, 9)
        os.waitpid(child, 0)
    assert not machine._held


@pytest.mark.skipif(machine.fcntl is None, reason="POSIX locks")
def test_a_private_lock_folder_holds_the_machines_locks(tmp_path, monkeypatch):
    import fcntl

    monkeypatch.setattr(machine, "_FOLDER", str(tmp_path / "machine"))
    own = machine.private_folder(tmp_path / "own")
    assert own == str(tmp_path / "own") and (os.stat(own).st_mode & 0o777) == 0o700
    for name in machine.LOCKS:
        assert os.path.samefile(os.path.join(own, name), tmp_path / "machine" / name)
    fd = os.open(os.path.join(own, "run"), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(BlockingIOError):  # the same lock, by the machine's name
            other = os.open(tmp_path / "machine" / "run", os.O_RDWR)
            try:
                fcntl.flock(other, fcntl.LOCK_SH | fcntl.LOCK_NB)
            finally:
                os.close(other)
    finally:
        os.close(fd)
    (tmp_path / "machine" / "gate").unlink()
    os.mkfifo(tmp_path / "machine" / "gate")  # no lock file: the machine's folder, as before
    assert machine.private_folder(tmp_path / "own2") == str(tmp_path / "machine")


def _sent_to_an_inbox(size: int, cap: int) -> pipes.Inbox:
    inbox = pipes.Inbox(cap=cap)
    child = subprocess.Popen(
        [sys.executable, "-c", f"import os, sys; os.write(int(sys.argv[1]), b'x' * {size})", str(inbox.fd)],
        pass_fds=(inbox.fd,),
    )
    inbox.handed_over()
    child.wait(60)
    inbox.close(grace=5)
    return inbox


def test_an_inbox_reads_what_a_child_sends_and_no_more_than_its_cap():
    inbox = _sent_to_an_inbox(600, cap=1000)
    assert bytes(inbox.data) == b"x" * 600 and not inbox.overflowed
    inbox = _sent_to_an_inbox(5000, cap=1000)
    assert inbox.overflowed and len(inbox.data) <= 1000
