# A submission of topic 01 that starts a double-forked daemon, in a session of its own, to
# rewrite grade-all's CSV and its own kept report once they are written (tests/test_grade_all.py
# puts the paths in place of the two names below and the stub of 01 after this).
import os
import time

GRADES, REPORT = "{grades}", "{report}"

if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        while not os.path.exists(GRADES):
            time.sleep(0.1)
        time.sleep(0.5)
        for path in (GRADES, REPORT):
            with open(path, "w") as f:
                f.write("student,01_threads,total\nmallory,10,10\n")
    os._exit(0)
