"""Check a tree-sitter grammar without the tree-sitter CLI: its rule tree (the JSON that
`tree-sitter generate` writes as src/grammar.json, printed by
editors/tree-sitter-dl/test/grammar-json.js) becomes a lark grammar, and lark's Earley parser
says whether the grammar's language holds a file.

Earley accepts any context-free grammar, so this checks what the grammar *accepts*, not how
tree-sitter's LR tables resolve precedence and conflicts (the CLI test does that, where the
CLI is installed)."""
from __future__ import annotations

import json
import re

import lark

_WRAPPERS = {"FIELD", "PREC", "PREC_LEFT", "PREC_RIGHT", "PREC_DYNAMIC", "ALIAS"}


def _regex(rule: dict) -> str:
    """A token's rule as one regular expression."""
    kind = rule["type"]
    if kind == "STRING":
        return re.escape(rule["value"])
    if kind == "PATTERN":
        return f"(?:{rule['value']})"
    if kind in ("TOKEN", "IMMEDIATE_TOKEN") or kind in _WRAPPERS:
        return _regex(rule["content"])
    if kind == "SEQ":
        return "".join(_regex(m) for m in rule["members"])
    if kind == "CHOICE":
        return "(?:" + "|".join(_regex(m) for m in rule["members"]) + ")"
    if kind in ("REPEAT", "REPEAT1"):
        return f"(?:{_regex(rule['content'])}){'*' if kind == 'REPEAT' else '+'}"
    if kind == "BLANK":
        return ""
    raise ValueError(f"a token cannot hold a {kind}")


def _is_token(rule: dict) -> bool:
    kind = rule["type"]
    return kind in ("STRING", "PATTERN", "TOKEN", "IMMEDIATE_TOKEN") or (kind in _WRAPPERS and _is_token(rule["content"]))


def _literal(text: str) -> str:
    return json.dumps(text)


class _Converter:
    def __init__(self, data: dict):
        self.terminals = {name for name, rule in data["rules"].items() if _is_token(rule)}

    def ref(self, name: str) -> str:
        return name.upper().lstrip("_") if name in self.terminals else name

    def expr(self, rule: dict) -> str:
        kind = rule["type"]
        if kind == "SYMBOL":
            return self.ref(rule["name"])
        if kind == "STRING":
            return _literal(rule["value"])
        if kind in ("PATTERN", "TOKEN", "IMMEDIATE_TOKEN"):
            return "/" + _regex(rule).replace("/", "\\/") + "/"
        if kind in _WRAPPERS:
            return self.expr(rule["content"])
        if kind == "SEQ":
            return "(" + " ".join(self.expr(m) for m in rule["members"]) + ")"
        if kind == "CHOICE":
            members = [m for m in rule["members"] if m["type"] != "BLANK"]
            body = "(" + " | ".join(self.expr(m) for m in members) + ")"
            return body + "?" if len(members) < len(rule["members"]) else body
        if kind in ("REPEAT", "REPEAT1"):
            return f"({self.expr(rule['content'])}){'*' if kind == 'REPEAT' else '+'}"
        raise ValueError(f"unsupported rule type {kind}")


def to_lark(data: dict) -> lark.Lark:
    """An Earley parser for the language of the tree-sitter grammar `data`."""
    convert = _Converter(data)
    lines = []
    for name, rule in data["rules"].items():
        if name in convert.terminals:
            lines.append(f"{convert.ref(name)}: /{_regex(rule).replace('/', chr(92) + '/')}/")
        else:
            lines.append(f"{name}: {convert.expr(rule)}")
    for extra in data["extras"]:
        if extra["type"] == "SYMBOL":
            lines.append(f"%ignore {convert.ref(extra['name'])}")
        else:
            lines.append(f"%ignore /{_regex(extra)}/")
    start = next(iter(data["rules"]))
    return lark.Lark("\n".join(lines), start=start, parser="earley", ambiguity="resolve")
