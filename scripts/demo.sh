#!/usr/bin/env bash
# The main job: set up, compile every spec in specs/, run the generated
# Transformer on a sample batch and print shapes and parameter counts.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/dlc compile specs/*.dl
PYTHONPATH=. .venv/bin/python scripts/demo.py
