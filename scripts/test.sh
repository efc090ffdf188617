#!/usr/bin/env bash
# Set up and run the whole test suite (the README's test command; .ci/run calls it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/dlc check specs stdlib
.venv/bin/dlc fmt --check specs stdlib
.venv/bin/dlc compile --check specs/*.dl
.venv/bin/ruff check --quiet --select F,E9 compiler benchmarks tests
.venv/bin/ruff check --quiet generated
.venv/bin/python -m pytest -q "$@"
