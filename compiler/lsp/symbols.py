"""What is under the cursor: the word, the block around it, the names that block defines, and
the call whose argument list the cursor is in.  Positions are 1-based (line, column), as in Span."""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from compiler.diagnostics import Span
from compiler.syntax import ast

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# what a forward scan needs to track brackets: strings and comments hide their contents
_BRACKETS = re.compile(r'"[^"\n]*"?|#[^\n]*|[()\[\]{}]')


@dataclass(frozen=True)
class Word:
    text: str
    span: Span


@dataclass(frozen=True)
class Local:
    """A name a block defines: a parameter, an input, a result, an output, a `let` or a loop variable."""

    name: str
    kind: str          # "parameter" | "input" | "result" | "output" | "let" | "loop variable"
    node: ast.Node     # the statement (or parameter) that defines it


def offset_of(text: str, line: int, col: int) -> int:
    """The string index of a 1-based (line, column), clamped to the text."""
    start = 0
    for _ in range(line - 1):
        start = text.find("\n", start) + 1
        if start == 0:
            return len(text)
    end = text.find("\n", start)
    end = len(text) if end < 0 else end
    return min(start + col - 1, end)


def word_at(text: str, line: int, col: int, file: str = "") -> Word | None:
    """The identifier that covers (or ends at) the position, if any."""
    lines = text.split("\n")
    if not 1 <= line <= len(lines):
        return None
    for match in _WORD.finditer(lines[line - 1]):
        if match.start() + 1 <= col <= match.end() + 1:
            return Word(match.group(), Span(file, line, match.start() + 1, line, match.end() + 1))
    return None


def _contains(span: Span, line: int, col: int) -> bool:
    return (span.line, span.col) <= (line, col) <= (span.end_line, span.end_col)


def enclosing_block(module: ast.Module | None, line: int, col: int) -> ast.BlockDef | None:
    if module is None:
        return None
    return next((b for b in module.blocks if _contains(b.span, line, col)), None)


def _statements(stmts: tuple[ast.Stmt, ...]) -> Iterator[ast.Stmt]:
    for stmt in stmts:
        yield stmt
        if isinstance(stmt, ast.If):
            yield from _statements(stmt.then)
            yield from _statements(stmt.orelse)
        elif isinstance(stmt, ast.For):
            yield from _statements(stmt.body)


def locals_of(block: ast.BlockDef) -> list[Local]:
    """Every name the block defines, in source order (a name bound in both branches of a static
    `if` appears twice)."""
    found = [Local(p.name, "parameter", p) for p in block.params]
    for stmt in _statements(block.body):
        if isinstance(stmt, ast.Input):
            found.append(Local(stmt.name, "input", stmt))
        elif isinstance(stmt, ast.Assign):
            found.extend(Local(t, "result", stmt) for t in stmt.targets)
        elif isinstance(stmt, ast.Output):
            found.append(Local(stmt.name, "output", stmt))
        elif isinstance(stmt, ast.Let):
            found.append(Local(stmt.name, "let", stmt))
        elif isinstance(stmt, ast.For):
            found.append(Local(stmt.var, "loop variable", stmt))
    return found


def import_at(module: ast.Module | None, word: Word) -> ast.Import | None:
    """The import statement naming `word` at its position, if the cursor is on one."""
    if module is None:
        return None
    for imp in module.imports:
        if any(name == word.text and span.line == word.span.line for name, span in imp.names):
            return imp
    return None


@dataclass(frozen=True)
class CallContext:
    """The innermost unclosed `(` before the cursor: `callee` names what is being configured
    (`Linear(` -> "Linear"); `applies` is true for `Block(config)(` — inputs, not parameters."""

    callee: str | None
    applies: bool
    keywords_used: tuple[str, ...]


def call_context(text: str, line: int, col: int) -> CallContext | None:
    cursor = offset_of(text, line, col)
    stack: list[int] = []
    for match in _BRACKETS.finditer(text, 0, cursor):
        token = match.group()
        if token in "([{":
            stack.append(match.start())
        elif token in ")]}" and stack:
            stack.pop()
    if not stack or text[stack[-1]] != "(":
        return None
    opening = stack[-1]
    before = text[:opening].rstrip()
    used = tuple(re.findall(r"([A-Za-z_]\w*)\s*=(?!=)", text[opening:cursor]))
    if before.endswith(")"):
        return CallContext(None, True, used)
    name = re.search(r"([A-Za-z_]\w*)$", before)
    return CallContext(name.group(1) if name else None, False, used)
