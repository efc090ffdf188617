"""SARIF's `helpUri` lands on a real section: docs/diagnostics.md has one per registered code,
generated from the registry and the explanations `dlc explain` prints, and is kept fresh."""
from __future__ import annotations

import json
import re

from compiler.cli import main
from compiler.diagnostics import CODES
from compiler.diagnostics.explanations import EXPLANATIONS
from compiler.diagnostics.reference import DOCUMENT, reference_markdown
from compiler.diagnostics.report import DOCS_URL
from tests.helpers import ROOT


def _github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives headings: lower case, spaces to dashes, other punctuation dropped."""
    headings = re.findall(r"^#+ (.+)$", markdown, re.M)
    return {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}


def test_the_reference_document_is_fresh():
    assert (ROOT / DOCUMENT).read_text() == reference_markdown(), \
        "docs/diagnostics.md is stale: run `python scripts/diagnostics_reference.py`"


def test_every_sarif_help_uri_is_a_section_of_the_shipped_reference(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.dl").write_text("model M() {\n  in x: [B, 4]\n  out y = Linear(5, 4)(x)\n}\n")
    main(["check", "bad.dl", "--format", "sarif"])
    rules = json.loads(capsys.readouterr().out)["runs"][0]["tool"]["driver"]["rules"]
    anchors = _github_anchors((ROOT / DOCUMENT).read_text())
    assert [r["id"] for r in rules] == list(CODES)
    for rule in rules:
        document, _, anchor = rule["helpUri"].partition("#")
        assert document == DOCS_URL and document.endswith("/" + DOCUMENT)
        assert anchor in anchors, rule["id"]
        assert EXPLANATIONS[rule["id"]] in rule["help"]["text"] and f"dlc explain {rule['id']}" in rule["help"]["text"]


def test_each_section_holds_the_explanation_dlc_explain_prints():
    text = (ROOT / DOCUMENT).read_text()
    for code in CODES:
        section = text.split(f"## {code}\n", 1)[1].split("\n## ", 1)[0]
        assert EXPLANATIONS[code] in section
