#!/usr/bin/env bash
# Runs for every submission: grades it and writes results/results.json.
set -uo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
COURSE="$ROOT/source/course"
WORK="$(mktemp -d)"
mkdir -p "$ROOT/results"
RESULTS="$ROOT/results/results.json"
rm -f "$RESULTS"
cp -R "$COURSE/exercises" "$WORK/exercises"
"$COURSE/.venv/bin/python" -m conclab export place "$ROOT/submission" "$WORK/exercises"
"$COURSE/.venv/bin/conclab" grade --impl "$WORK/exercises" <<topics>>--format gradescope --json "$RESULTS"
if [ ! -s "$RESULTS" ]; then
    echo '{"score": 0, "output": "The autograder could not grade this submission; please tell your instructor."}' > "$RESULTS"
fi
rm -rf "$WORK"
exit 0
