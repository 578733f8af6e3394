"""Code that got past the guard, as if a submission had found a way round it: in a grading
run (a pytest run with --conclab-guard), at start-up, before any check of ours, it leaves
every way the grading has of finding it (a double fork into a session of its own, then a
program with an empty environment) and waits for grade-all to write the grades, to rewrite
them.  Used by tests/test_grade_all.py with this folder on PYTHONPATH."""

import os
import sys

TARGET = os.environ.get("CONCLAB_TEST_GRADES")
STRIKE = """
import os, sys, time
path = sys.argv[1]
while not os.path.exists(path):
    time.sleep(0.1)
time.sleep(0.5)
with open(path, "w") as f:
    f.write("student,total\\nmallory,1000\\n")
"""

if TARGET and any(arg.startswith("--conclab-guard=") for arg in sys.argv) and os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execve(sys.executable, [sys.executable, "-c", STRIKE, TARGET], {})
    os._exit(0)
