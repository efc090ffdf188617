#!/usr/bin/env bash
# Set up and run the whole test suite (the README's test command; .ci/run calls it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Keep bytecode even where the environment says PYTHONDONTWRITEBYTECODE: each test process (and each CLI
# subprocess) otherwise compiles every compiler and test module from source and pytest rewrites every
# test module's asserts again, 3-5 s of CPU per worker on every run (measured on this machine).
unset PYTHONDONTWRITEBYTECODE
.venv/bin/dlc check specs stdlib
.venv/bin/dlc fmt --check specs stdlib
.venv/bin/dlc compile --check specs/*.dl
.venv/bin/ruff check --quiet --select F,E9 compiler benchmarks tests
.venv/bin/ruff check --quiet generated
.venv/bin/python -m pytest -q "$@"
