"""`dlc check --format json|github|sarif`: the machine-readable outputs CI tools read."""
from __future__ import annotations

import json
import re

import pytest

from compiler.cli import main
from compiler.diagnostics import CODES

BROKEN = """import layers

model Broken(d: int = 512) {
    in ids: [B, S] int64
    e = Embedding(1000, 256)(ids)
    ffn = FeedForward(d, 2048)(e)
    out ffn
}
"""

WARNING_ONLY = """model Fine(d: int = 4) {
    in x: [B, d]
    in unused: [B, d]
    out y = Linear(d, d)(x)
}
"""


@pytest.fixture
def broken(tmp_path):
    path = tmp_path / "broken.dl"
    path.write_text(BROKEN)
    return path


def _run(capsys, *argv) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_json_schema_v1(capsys, broken):
    code, out = _run(capsys, "check", str(broken), "--format", "json")
    doc = json.loads(out)
    assert code == 1
    assert doc["version"] == 1 and doc["tool"]["name"] == "dlc"
    assert doc["summary"] == {"errors": 1, "warnings": 0}
    (d,) = doc["diagnostics"]
    assert d["code"] == "DLC007" and d["name"] == "shape-mismatch" and d["severity"] == "error"
    assert d["span"] == {"file": str(broken), "line": 6, "column": 11, "end_line": 6, "end_column": 34}
    assert {n["span"]["line"] for n in d["notes"]} >= {5}


def test_github_annotations(capsys, broken):
    code, out = _run(capsys, "check", str(broken), "--format", "github")
    assert code == 1
    pattern = r"::error file=([^,]+),line=(\d+),col=(\d+),endLine=\d+,endColumn=\d+,title=DLC007::(.+)"
    match = re.fullmatch(pattern, out.strip())
    assert match, out
    assert match.group(1) == str(broken) and match.group(2) == "6" and match.group(3) == "11"
    assert "\n" not in match.group(4) and "expects [B, S, 512]" in match.group(4)


def test_github_escapes_newlines_and_percent(tmp_path, capsys):
    path = tmp_path / "w.dl"
    path.write_text(WARNING_ONLY)
    code, out = _run(capsys, "check", str(path), "--format", "github")
    assert code == 0
    assert out.startswith("::warning ") and "%0Ahint%3A" not in out and "%0Ahint: " in out


def test_sarif_2_1_0(capsys, broken):
    code, out = _run(capsys, "check", str(broken), "--format", "sarif")
    doc = json.loads(out)
    assert code == 1 and doc["version"] == "2.1.0" and "$schema" in doc
    run = doc["runs"][0]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    rule_ids = set(rules)
    assert rule_ids == set(CODES) and rules["DLC007"]["name"] == "shape-mismatch"
    assert rules["DLC020"]["defaultConfiguration"]["level"] == "warning"
    (result,) = run["results"]
    assert result["ruleId"] in rule_ids and result["level"] == "error"
    region = result["locations"][0]["physicalLocation"]["region"]
    assert (region["startLine"], region["startColumn"]) == (6, 11)
    # outside the repository (pytest's tmp folder): an absolute file URI; inside, see test_ci_output.py
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == broken.resolve().as_uri()
    assert all("physicalLocation" in loc for loc in result["relatedLocations"])


def test_strict_turns_warnings_into_errors(tmp_path, capsys):
    path = tmp_path / "w.dl"
    path.write_text(WARNING_ONLY)
    assert _run(capsys, "check", str(path), "--format", "json")[0] == 0
    code, out = _run(capsys, "check", str(path), "--format", "json", "--strict")
    assert code == 1 and json.loads(out)["diagnostics"][0]["code"] == "DLC020"


def test_every_code_has_a_long_explanation_with_an_example(capsys):
    from compiler.diagnostics import CODES
    from compiler.diagnostics.explanations import EXPLANATIONS
    assert set(EXPLANATIONS) == set(CODES)
    for code in CODES:
        assert main(["explain", code]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"{code} [{CODES[code].name}]: {CODES[code].summary}") and len(out) > 150


class _Terminal:
    """A stand-in stderr that says it is a terminal."""

    def __init__(self):
        self.parts: list[str] = []

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    def flush(self) -> None:
        pass


def test_colour_only_on_a_terminal_without_no_color(broken, monkeypatch):
    import io
    import sys

    terminal = _Terminal()
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["check", str(broken)]) == 1
    assert "\033[1;31merror\033[0m" in "".join(terminal.parts)

    terminal.parts.clear()
    monkeypatch.setenv("NO_COLOR", "1")
    assert main(["check", str(broken)]) == 1
    assert "\033[" not in "".join(terminal.parts) and "error[DLC007]" in "".join(terminal.parts)

    piped = io.StringIO()                             # not a terminal: plain text
    monkeypatch.setattr(sys, "stderr", piped)
    monkeypatch.delenv("NO_COLOR")
    assert main(["check", str(broken)]) == 1
    assert "\033[" not in piped.getvalue() and "error[DLC007]" in piped.getvalue()
