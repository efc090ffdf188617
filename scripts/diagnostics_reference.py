"""Write docs/diagnostics.md from the registry of codes and their explanations (SARIF's
`helpUri` links into it; tests/test_diagnostics_reference.py fails when it is stale).

    .venv/bin/python scripts/diagnostics_reference.py
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from compiler.diagnostics.reference import DOCUMENT, reference_markdown  # noqa: E402

if __name__ == "__main__":
    path = ROOT / DOCUMENT
    path.parent.mkdir(exist_ok=True)
    path.write_text(reference_markdown())
    print(f"wrote {path.relative_to(ROOT)}")
