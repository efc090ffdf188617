"""A small TextMate tokenizer, enough for tests of editors/vscode/syntaxes/dl.tmLanguage.json.

It implements the rules the grammar uses, as VS Code's engine (vscode-textmate) applies them:
`match` rules with `captures`, `begin`/`end` rules with nested `patterns` and begin/end
captures, `include` of `#repository` entries and `$self`; at each position the rule whose
match starts first wins, the earlier rule on a tie, and an open rule's `end` before its
patterns.  Lines are tokenized one at a time, without their newline, as editors do.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Token:
    start: int
    end: int
    scopes: tuple[str, ...]


class Grammar:
    def __init__(self, path: Path):
        self.data = json.loads(path.read_text())
        self.scope = self.data["scopeName"]
        self._compiled: dict[str, re.Pattern] = {}

    def regex(self, source: str) -> re.Pattern:
        if source not in self._compiled:
            self._compiled[source] = re.compile(source)
        return self._compiled[source]

    def patterns(self, rule: dict) -> list[dict]:
        """The match/begin rules of `rule`'s patterns, includes expanded."""
        found: list[dict] = []
        for p in rule.get("patterns", []):
            if "include" in p:
                target = self.data if p["include"] == "$self" else self.data["repository"][p["include"][1:]]
                found.extend([target] if ("match" in target or "begin" in target) else self.patterns(target))
            else:
                found.append(p)
        return found


def _scoped(tokens: list[Token], start: int, end: int, scopes: tuple[str, ...]) -> None:
    if end > start:
        tokens.append(Token(start, end, scopes))


def _captured(tokens: list[Token], match: re.Match, captures: dict, scopes: tuple[str, ...]) -> None:
    """The match's text with `scopes`, its capture groups with their names added."""
    marks = sorted((match.start(int(g)), match.end(int(g)), c["name"]) for g, c in captures.items()
                   if match.group(int(g)) is not None and "name" in c)
    pos = match.start()
    for start, end, name in marks:
        if start < pos:          # a group inside one already scoped: not used by this grammar
            continue
        _scoped(tokens, pos, start, scopes)
        _scoped(tokens, start, end, scopes + (name,))
        pos = end
    _scoped(tokens, pos, match.end(), scopes)


def tokenize_line(grammar: Grammar, line: str, stack: list[dict]) -> list[Token]:
    """Tokens of one line; `stack` holds the open begin/end rules and is updated in place."""
    tokens: list[Token] = []
    pos = 0
    while pos <= len(line):
        context = stack[-1] if stack else grammar.data
        scopes = (grammar.scope,) + tuple(r["name"] for r in stack if "name" in r)
        candidates = ([("end", context)] if stack else []) + [("rule", r) for r in grammar.patterns(context)]
        best = None
        for kind, rule in candidates:
            match = grammar.regex(rule["end"] if kind == "end" else rule.get("match") or rule["begin"]).search(line, pos)
            if match and (best is None or match.start() < best[2].start()):
                best = (kind, rule, match)
        if best is None:
            _scoped(tokens, pos, len(line), scopes)
            break
        kind, rule, match = best
        _scoped(tokens, pos, match.start(), scopes)
        if kind == "end":
            _captured(tokens, match, rule.get("endCaptures", {}), scopes)
            stack.pop()
        elif "match" in rule:
            inner = scopes + ((rule["name"],) if "name" in rule else ())
            _captured(tokens, match, rule.get("captures", {}), inner)
        else:
            inner = scopes + ((rule["name"],) if "name" in rule else ())
            _captured(tokens, match, rule.get("beginCaptures", {}), inner)
            stack.append(rule)
        if match.end() == pos and kind != "end" and "begin" not in rule:
            _scoped(tokens, pos, pos + 1, scopes)      # an empty match: step over one character
            pos += 1
        else:
            pos = match.end()
        if pos == len(line) and not stack:
            break
    return tokens


def tokenize(grammar: Grammar, text: str) -> list[list[Token]]:
    stack: list[dict] = []
    return [tokenize_line(grammar, line, stack) for line in text.split("\n")]
