"""The editor grammars in editors/ cover the language: the TextMate grammar gives every
character of every stdlib/spec file a scope (checked with a Python implementation of its rules,
and against VS Code's own engine when node has it), and the tree-sitter grammar accepts every
file (checked through its rule tree with an Earley parser, and with the tree-sitter CLI when
that is installed)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from functools import lru_cache

import pytest

from tests.helpers import ROOT
from tests.textmate import Grammar, tokenize
from tests.tree_sitter_rules import to_lark

SPECS = sorted((ROOT / "stdlib").glob("*.dl")) + sorted((ROOT / "specs").glob("*.dl"))
_IDS = [f"{p.parent.name}/{p.name}" for p in SPECS]
VSCODE = ROOT / "editors" / "vscode"
TEXTMATE = VSCODE / "syntaxes" / "dl.tmLanguage.json"
TREE_SITTER = ROOT / "editors" / "tree-sitter-dl"
NODE = shutil.which("node")


def _scopes_by_character(text: str) -> list[list[tuple[str, ...] | None]]:
    rows = []
    for line, tokens in zip(text.split("\n"), tokenize(Grammar(TEXTMATE), text)):
        row: list[tuple[str, ...] | None] = [None] * len(line)
        for t in tokens:
            row[t.start:t.end] = [t.scopes] * (t.end - t.start)
        rows.append(row)
    return rows


# ---------------------------------------------------------------------- TextMate
@pytest.mark.parametrize("path", SPECS, ids=_IDS)
def test_textmate_gives_every_character_a_scope(path):
    text = path.read_text()
    for number, (line, row) in enumerate(zip(text.split("\n"), _scopes_by_character(text)), 1):
        bare = [i for i, ch in enumerate(line) if not ch.isspace() and (row[i] is None or len(row[i]) < 2)]
        assert not bare, f"{path.name}:{number}:{bare[0] + 1}: no rule matches {line[bare[0]:]!r}"


def _scope_of(text: str, needle: str, offset: int = 0) -> tuple[str, ...]:
    index = text.index(needle) + offset
    line = text[:index].count("\n")
    return _scopes_by_character(text)[line][index - (text.rfind("\n", 0, index) + 1)]


@pytest.mark.parametrize("needle, offset, scope", [
    ("# ResNet", 0, "comment.line.number-sign.dl"),
    ("model ResNet(", 0, "storage.type.block.dl"),
    ("ResNet(depth", 0, "entity.name.type.block.dl"),
    ("int = 50", 0, "storage.type.parameter.dl"),
    ('"ResNet comes', 3, "string.quoted.double.dl"),
    ("require", 0, "keyword.other.statement.dl"),
    ("if depth == 18", 0, "keyword.control.conditional.dl"),
    ("Conv2d(3", 0, "entity.name.function.call.dl"),
    ("stride=2", 0, "variable.parameter.keyword.dl"),
    ("false)(x)", 0, "constant.language.dl"),
    ("repeat(", 0, "keyword.control.repeat.dl"),
    ("in x:", 3, "variable.other.definition.dl"),
])
def test_textmate_scopes_the_constructs(needle, offset, scope):
    assert scope in _scope_of((ROOT / "specs" / "resnet.dl").read_text(), needle, offset)


def test_textmate_scopes_rename_rules():
    text = (ROOT / "specs" / "gpt2.dl").read_text()
    assert "constant.other.placeholder.dl" in _scope_of(text, '"h.{i}."', 4)
    assert "keyword.operator.arrow.dl" in _scope_of(text, "->")
    assert "keyword.other.statement.dl" in _scope_of(text, "rename \"wte")


def test_textmate_scopes_dtypes_numbers_and_optional():
    text = "model M(eps: float = 1e-12) {\n    in x: [B, S] int64 optional\n    out y = x * 0.5\n}\n"
    assert "constant.numeric.float.dl" in _scope_of(text, "1e-12", 2)
    assert "support.type.dtype.dl" in _scope_of(text, "int64")
    assert "storage.modifier.optional.dl" in _scope_of(text, "optional")
    assert "keyword.operator.arithmetic.dl" in _scope_of(text, "* 0.5")


@lru_cache(maxsize=1)
def _vscode_textmate() -> bool:
    if NODE is None:
        return False
    probe = subprocess.run([NODE, "-e", "require.resolve('vscode-textmate'); require.resolve('vscode-oniguruma')"],
                           cwd=VSCODE, capture_output=True)
    return probe.returncode == 0


def test_textmate_agrees_with_vscode_textmate():
    """VS Code's engine (Oniguruma regexes) scopes every character as the Python tokenizer does,
    so the checks above hold in the editor.  Needs node with vscode-textmate and
    vscode-oniguruma (npm install them in editors/vscode, or put them on NODE_PATH)."""
    if not _vscode_textmate():
        pytest.skip("node with vscode-textmate and vscode-oniguruma is not installed")
    run = subprocess.run([NODE, str(VSCODE / "test" / "tokenize.js"), str(TEXTMATE), *map(str, SPECS)],
                         cwd=VSCODE, capture_output=True, text=True, check=True)
    reference = json.loads(run.stdout)
    for path in SPECS:
        text = path.read_text()
        for number, (line, ours, theirs) in enumerate(zip(text.split("\n"), _scopes_by_character(text),
                                                          reference[str(path)]), 1):
            row = [None] * len(line)
            for start, end, scopes in theirs:
                row[start:end] = [tuple(scopes)] * (end - start)
            assert ours == row, f"{path.name}:{number}: {line!r}"


# ---------------------------------------------------------------------- tree-sitter
@lru_cache(maxsize=1)
def _rule_tree() -> dict:
    if NODE is None:
        pytest.skip("node is not installed: grammar.js cannot be evaluated")
    run = subprocess.run([NODE, str(TREE_SITTER / "test" / "grammar-json.js"), str(TREE_SITTER / "grammar.js")],
                         capture_output=True, text=True, check=True)
    return json.loads(run.stdout)


@lru_cache(maxsize=1)
def _earley():
    return to_lark(_rule_tree())


def _symbols(rule: dict) -> set[str]:
    if rule["type"] == "SYMBOL":
        return {rule["name"]}
    children = rule.get("members", []) + ([rule["content"]] if "content" in rule else [])
    return set().union(*map(_symbols, children)) if children else set()


def test_tree_sitter_grammar_defines_every_rule_it_uses():
    tree = _rule_tree()
    used = set().union(*map(_symbols, tree["rules"].values())) | {tree["word"]}
    assert used <= set(tree["rules"]), used - set(tree["rules"])


def test_tree_sitter_highlight_queries_name_real_nodes():
    tree = _rule_tree()
    queries = (TREE_SITTER / "queries" / "highlights.scm").read_text()
    named = set(re.findall(r"\((\w+)", re.sub(r";[^\n]*", "", queries)))
    assert named <= set(tree["rules"]), named - set(tree["rules"])


_SMALL = [p for p in SPECS if p.name in ("layers.dl", "attention.dl", "tagger.dl", "transformer.dl")]


@pytest.mark.parametrize("path", _SMALL, ids=[p.name for p in _SMALL])
def test_tree_sitter_grammar_accepts_small_specs(path):
    _earley().parse(path.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("path", SPECS, ids=_IDS)
def test_tree_sitter_grammar_accepts_every_spec(path):
    _earley().parse(path.read_text())


@pytest.mark.parametrize("text", ["block A( {\n}\n", "model M() {\n    in x: [B\n}\n", "model M() { out y = }\n"])
def test_tree_sitter_grammar_rejects_broken_specs(text):
    import lark
    with pytest.raises(lark.exceptions.LarkError):
        _earley().parse(text)


@pytest.mark.slow
def test_tree_sitter_cli_generates_the_parser_and_parses_every_spec(tmp_path):
    """The real thing: `tree-sitter generate` builds the LR tables (failing on an unresolved
    conflict), `tree-sitter parse` must find no ERROR or MISSING node in any file."""
    cli = shutil.which("tree-sitter")
    if cli is None or (shutil.which("cc") is None and shutil.which("gcc") is None):
        pytest.skip("the tree-sitter CLI (npm tree-sitter-cli) or a C compiler is not installed")
    work = tmp_path / "tree-sitter-dl"
    shutil.copytree(TREE_SITTER, work)
    env = {**os.environ, "TREE_SITTER_DIR": str(tmp_path / "config")}
    subprocess.run([cli, "generate"], cwd=work, check=True, env=env, capture_output=True)
    for path in SPECS:
        run = subprocess.run([cli, "parse", "--quiet", str(path)], cwd=work, env=env, capture_output=True, text=True)
        assert run.returncode == 0 and "ERROR" not in run.stdout and "MISSING" not in run.stdout, \
            f"{path.name}: {run.stdout[-2000:]}"


# ---------------------------------------------------------------------- the VS Code extension
def test_vscode_manifest_wires_the_language_grammar_and_server():
    manifest = json.loads((VSCODE / "package.json").read_text())
    (language,) = manifest["contributes"]["languages"]
    assert language["id"] == "dl" and language["extensions"] == [".dl"]
    assert json.loads((VSCODE / language["configuration"]).read_text())["comments"] == {"lineComment": "#"}
    (grammar,) = manifest["contributes"]["grammars"]
    assert grammar["language"] == "dl" and (VSCODE / grammar["path"]).resolve() == TEXTMATE
    assert json.loads(TEXTMATE.read_text())["scopeName"] == grammar["scopeName"]
    assert manifest["contributes"]["configuration"]["properties"]["dlc.command"]["default"] == ["dlc", "lsp"]
    extension = (VSCODE / manifest["main"]).read_text()
    assert "vscode-languageclient" in extension and "vscode-languageclient" in manifest["dependencies"]
    if NODE is not None:
        subprocess.run([NODE, "--check", str(VSCODE / manifest["main"])], check=True)
