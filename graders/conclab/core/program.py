"""`python -m conclab.core.program RULES SCRIPT ARG...`: a student's module run as a program (topic
14's server), under the same guard as the grading run that starts it (guard.program_command),
installed before a line of the module runs."""

from __future__ import annotations

import json
import os
import runpy
import sys

from conclab.core import guard


def main() -> None:
    guard.install(guard.Rules.of_fields(*json.loads(sys.argv[1])))
    script = sys.argv[2]
    sys.argv = sys.argv[2:]
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
