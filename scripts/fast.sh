#!/usr/bin/env bash
# The fast lane: every test not marked slow, on pytest-xdist workers (two unless DLC_TEST_WORKERS
# says otherwise), failing unless the tests run still import every compiler module and read every
# spec (tests/fast_lane.py).  scripts/test.sh runs everything, the slow tests too.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Keep bytecode even where the environment says PYTHONDONTWRITEBYTECODE: each test process (and each CLI
# subprocess) otherwise compiles every compiler and test module from source and pytest rewrites every
# test module's asserts again, 3-5 s of CPU per worker on every run (measured on this machine).
unset PYTHONDONTWRITEBYTECODE
.venv/bin/python -m pytest -q -m "not slow" --fast-lane-coverage "$@"
