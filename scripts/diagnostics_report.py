#!/usr/bin/env python3
"""Print issue 16's figures on the corpus of realistic mistakes (tests/diagnostics/corpus/):
the share of cases whose primary diagnostic is at the line to edit, the share whose hint
names a correct fix, and the number of messages leaking internal representations.

    .venv/bin/python scripts/diagnostics_report.py [--failures]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.diagnostic_figures import measure  # noqa: E402


def _failures(figures) -> list[str]:
    lines = []
    for o in figures.outcomes:
        want, p = o.case.wants[0], o.primary
        problems = [] if o.at_line_to_edit() else ["location"]
        problems += [] if want.fix is None or o.names_the_fix() else ["fix"]
        problems += ["leak"] if o.leaks() else []
        if problems:
            said = f"{p.span.line}:{p.span.col} {p.code} {p.message} | hint: {p.hint}" if p else "nothing"
            lines.append(f"{o.case.id} [{', '.join(problems)}] want line {want.line} {want.code} "
                         f"fix {want.fix!r}\n    dlc: {said}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--failures", action="store_true", help="list the cases that miss a goal")
    args = parser.parse_args()
    figures = measure()
    print(figures.summary())
    if args.failures:
        print("\n".join(["", *_failures(figures)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
