"""The code registry: every code a named constant with a summary and an explanation,
no raw code strings in the compiler, and `dlc explain` by number or by name."""
from __future__ import annotations

import re
from pathlib import Path

from compiler.cli import main
from compiler.diagnostics import CODES, Code, lookup
from compiler.diagnostics import codes as codes_module
from compiler.diagnostics.explanations import EXPLANATIONS

COMPILER = Path(__file__).resolve().parent.parent / "compiler"
REGISTRY_FILES = {"codes.py", "explanations.py", "explanations_split.py", "explanations_init.py", "explanations_scan.py"}


def test_every_constant_is_registered_once_with_a_kebab_case_name():
    constants = {name: c for name, c in vars(codes_module).items() if isinstance(c, Code)}
    assert sorted(c.code for c in constants.values()) == sorted(CODES)
    for name, c in constants.items():
        assert re.fullmatch(r"DLC\d{3}", c.code) and re.fullmatch(r"[a-z]+(-[a-z]+)*", c.name)
        assert name == c.name.upper().replace("-", "_"), f"{name} should be named after {c.name}"
        assert c.summary and not c.summary.endswith(".") and c.summary[0].islower()
    assert len({c.name for c in CODES.values()}) == len(CODES)


def test_no_raw_code_strings_in_the_compiler():
    """Stages raise `error(SHAPE_MISMATCH, ...)`, never `error("DLC007", ...)`."""
    raw = [f"{path.relative_to(COMPILER)}:{i}" for path in COMPILER.rglob("*.py") if path.name not in REGISTRY_FILES
           for i, line in enumerate(path.read_text().splitlines(), 1) if re.search(r"[\"']DLC\d{3}[\"']", line)]
    assert raw == []


def test_explain_by_number_or_by_name(capsys):
    assert main(["explain", "shape-mismatch"]) == 0
    by_name = capsys.readouterr().out
    assert main(["explain", "dlc007"]) == 0
    assert capsys.readouterr().out == by_name and by_name.startswith("DLC007 [shape-mismatch]: ")
    assert lookup("no-such-code") is None and main(["explain", "DLC999"]) == 2


def test_every_code_has_an_explanation():
    assert set(EXPLANATIONS) == set(CODES)
    assert all(len(EXPLANATIONS[c]) > 100 for c in CODES)
