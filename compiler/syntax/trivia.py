"""What the parser throws away but the formatter must keep: comments, and where the braces and
`else` keywords sit (the AST has spans for statements, not for their punctuation).

A scan of the text that skips string literals is enough: in dlc a string never spans lines
and holds no escapes, so `#`, `{` and `}` outside strings are exactly the grammar's.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

Position = tuple[int, int]      # (line, column), both 1-based, as in Span

_TOKEN = re.compile(r'"[^"\n]*"?|#[^\n]*|[{}]|\belse\b|\n')


@dataclass(frozen=True)
class Trivia:
    kind: str                   # "comment" | "{" | "}" | "else"
    text: str
    line: int
    col: int
    own_line: bool = False      # a comment with nothing but blanks before it on its line

    @property
    def pos(self) -> Position:
        return (self.line, self.col)


def scan(text: str) -> list[Trivia]:
    """Comments, braces and `else` keywords of `text`, in order."""
    found: list[Trivia] = []
    line, line_start = 1, 0
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token == "\n":
            line, line_start = line + 1, match.end()
            continue
        if token.startswith('"'):
            continue
        col = match.start() - line_start + 1
        if token.startswith("#"):
            own = text[line_start: match.start()].strip() == ""
            found.append(Trivia("comment", token.rstrip(), line, col, own))
        else:
            found.append(Trivia(token, token, line, col))
    return found


def first_after(trivia: list[Trivia], kind: str, pos: Position) -> Trivia:
    """The first piece of trivia of `kind` at or after `pos` (the parser guarantees one)."""
    return next(t for t in trivia if t.kind == kind and t.pos >= pos)
