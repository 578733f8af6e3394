#!/usr/bin/env bash
# Runs once, as root, when Gradescope builds the autograder image.
set -euo pipefail
SOURCE="${AUTOGRADER_ROOT:-/autograder}/source"
if ! python3 -m venv --help >/dev/null 2>&1; then
    apt-get install -y python3 python3-venv python3-pip
fi
cd "$SOURCE/course"
python3 -m venv .venv
.venv/bin/pip install -q -e .
