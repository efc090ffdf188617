"""The canonical layout of a .dl file (`dlc fmt`).

The text is parsed to its AST; each statement is printed from the AST (`printing`) and broken
to the width (`layout`); comments and blank lines, which the AST does not hold, come from a
scan of the text (`trivia`) and are put back by position:

- a comment on a line of its own stays before the statement, brace or end of block it
  preceded, at that statement's indentation;
- a comment after code stays at the end of that code's (last) line; the trailing comments
  of consecutive lines are aligned two columns after the longest code among them;
- a statement or header with a comment *inside* it (between its first and last character)
  is kept as written, re-indented, so no comment ever moves away from the code it explains;
- runs of blank lines become one; blank lines at the start or end of a body are dropped;
  a blank line always separates a block definition from its neighbours.

The result is checked before it is returned: it must parse to the same AST (spans aside) and
hold the same comments, or `format_source` raises instead of returning a changed program.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass

from compiler.diagnostics import Span
from compiler.syntax import DEFAULT_WIDTH
from compiler.syntax import ast
from compiler.syntax.layout import Doc, layout
from compiler.syntax.parser import parse
from compiler.syntax.printing import Printer
from compiler.syntax.trivia import Position, Trivia, first_after, scan

INDENT = 4
_END: Position = (1 << 30, 0)


class FormatterBug(RuntimeError):
    """The formatted text would not mean the same as the input: a bug in dlc, never written."""


@dataclass
class _Line:
    code: str
    comment: str | None = None      # a trailing comment, aligned at the end


def _start(node: ast.Node) -> Position:
    return (node.span.line, node.span.col)


def _end(node: ast.Node) -> Position:
    return (node.span.end_line, node.span.end_col)


class _Formatter:
    def __init__(self, text: str, module: ast.Module, width: int):
        self.text, self.module, self.width = text, module, width
        self.line_offsets = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
        trivia = scan(text)
        self.comments = [t for t in trivia if t.kind == "comment"]
        self.marks = [t for t in trivia if t.kind != "comment"]
        self.next_comment = 0
        self.out: list[_Line] = []
        self.last_line = 0          # source line on which the last thing emitted ended
        self.printer = Printer(self.source)

    # ------------------------------------------------------------- text and comments
    def offset(self, pos: Position) -> int:
        return self.line_offsets[pos[0] - 1] + pos[1] - 1

    def source(self, span: Span) -> str:
        return self.text[self.offset((span.line, span.col)): self.offset((span.end_line, span.end_col))]

    def _peek(self) -> Trivia | None:
        return self.comments[self.next_comment] if self.next_comment < len(self.comments) else None

    def _gap(self, line: int, first: bool, force: bool = False) -> None:
        """One blank line where the source had some (or where `force` wants one)."""
        if not first and (force or line > self.last_line + 1) and self.out and self.out[-1].code:
            self.out.append(_Line(""))

    def _leading(self, before: Position, indent: int, first: bool, force: bool = False) -> bool:
        """Emit the comments before `before` on lines of their own; returns the new `first`."""
        while (c := self._peek()) is not None and c.pos < before:
            self._gap(c.line, first, force)
            self.out.append(_Line(" " * indent + c.text))
            self.next_comment += 1
            self.last_line, first, force = c.line, False, False
        return first

    def _trailing(self, line: int, after: Position) -> None:
        c = self._peek()
        if c is not None and c.line == line and c.pos >= after and self.out:
            self.out[-1].comment = c.text
            self.next_comment += 1

    def _has_comment_before(self, pos: Position) -> bool:
        c = self._peek()
        return c is not None and c.pos < pos

    def _verbatim(self, start: Position, end: Position, indent: int, prefix: str = "") -> None:
        """The source from `start` to `end` as written, re-indented to `indent`."""
        lines = self.text[self.offset(start): self.offset(end)].split("\n")
        shift = indent + len(prefix) - (start[1] - 1)
        self.out.append(_Line(" " * indent + prefix + lines[0].rstrip()))
        for line in lines[1:]:
            kept = len(line) - len(line.lstrip(" "))
            line = " " * max(0, kept + shift) + line.lstrip(" ")
            self.out.append(_Line(line.rstrip()))
        while self._has_comment_before(end):
            self.next_comment += 1

    # ------------------------------------------------------------- pieces
    def _emit(self, doc: Doc, start: Position, end: Position, indent: int, prefix: str = "") -> None:
        """One statement or header ending at `end`, then its trailing comment."""
        if self._has_comment_before(end):
            self._verbatim(start, end, indent, prefix)
        else:
            self.out.extend(_Line(line) for line in layout(doc, indent, self.width))
        self._trailing(end[0], end)
        self.last_line = end[0]

    def _closer(self, brace: Trivia, indent: int, text: str = "}") -> None:
        self.out.append(_Line(" " * indent + text))
        end = (brace.line, brace.col + 1)
        self._trailing(brace.line, end)
        self.last_line = brace.line

    def _body(self, stmts: tuple[ast.Stmt, ...], indent: int, end: Position) -> None:
        first = True
        for stmt in stmts:
            first = self._leading(_start(stmt), indent, first)
            self._gap(stmt.span.line, first)
            self._statement(stmt, indent)
            first = False
        self._leading(end, indent, first)

    def _after(self, stmts: tuple[ast.Stmt, ...], brace: Trivia) -> Position:
        return _end(stmts[-1]) if stmts else (brace.line, brace.col + 1)

    # ------------------------------------------------------------- statements
    def _statement(self, stmt: ast.Stmt, indent: int) -> None:
        if isinstance(stmt, ast.If):
            self._if(stmt, indent)
        elif isinstance(stmt, ast.For):
            self._for(stmt, indent)
        else:
            self._emit(self.printer.statement(stmt), _start(stmt), _end(stmt), indent)

    def _if(self, stmt: ast.If, indent: int, prefix: str = "") -> None:
        brace = first_after(self.marks, "{", _end(stmt.cond))
        self._emit(self.printer.if_header(stmt, prefix), _start(stmt), (brace.line, brace.col + 1), indent, prefix)
        close = first_after(self.marks, "}", self._after(stmt.then, brace))
        if not stmt.orelse:
            self._body(stmt.then, indent + INDENT, close.pos)
            self._closer(close, indent)
            return
        keyword = first_after(self.marks, "else", (close.line, close.col + 1))
        nested = stmt.orelse[0] if len(stmt.orelse) == 1 and isinstance(stmt.orelse[0], ast.If) else None
        if nested is not None and _start(nested) > keyword.pos and not self._else_brace_between(keyword, nested):
            self._body(stmt.then, indent + INDENT, _start(nested))       # `} else if ... {`
            self._if(nested, indent, prefix="} else ")
            return
        else_brace = first_after(self.marks, "{", (keyword.line, keyword.col + 4))
        self._body(stmt.then, indent + INDENT, (else_brace.line, else_brace.col + 1))
        self._closer(else_brace, indent, "} else {")
        else_close = first_after(self.marks, "}", self._after(stmt.orelse, else_brace))
        self._body(stmt.orelse, indent + INDENT, else_close.pos)
        self._closer(else_close, indent)

    def _else_brace_between(self, keyword: Trivia, nested: ast.If) -> bool:
        """`else { if ... }` rather than `else if ...`: both parse to one nested `if`."""
        brace = first_after(self.marks, "{", (keyword.line, keyword.col + 4))
        return brace.pos < _start(nested)

    def _for(self, stmt: ast.For, indent: int) -> None:
        brace = first_after(self.marks, "{", _end(stmt.iterable))
        self._emit(self.printer.for_header(stmt), _start(stmt), (brace.line, brace.col + 1), indent)
        close = first_after(self.marks, "}", self._after(stmt.body, brace))
        self._body(stmt.body, indent + INDENT, close.pos)
        self._closer(close, indent)

    # ------------------------------------------------------------- top level
    def _block(self, block: ast.BlockDef) -> None:
        after_header = _end(block.params[-1]) if block.params else _end_of(block.name_span)
        brace = first_after(self.marks, "{", after_header)
        self._emit(self.printer.block_header(block), _start(block), (brace.line, brace.col + 1), 0)
        close = first_after(self.marks, "}", self._after(block.body, brace))
        self._body(block.body, INDENT, close.pos)
        self._closer(close, 0)

    def _item(self, item: ast.Node) -> None:
        if isinstance(item, ast.BlockDef):
            self._block(item)
        elif isinstance(item, ast.ModelAlias):
            self._emit(self.printer.alias(item), _start(item), _end(item), 0)
        else:
            self._emit(self.printer.import_(item), _start(item), _end(item), 0)

    def run(self) -> str:
        items = sorted((*self.module.imports, *self.module.blocks, *self.module.aliases), key=_start)
        first, previous_block = True, False
        for item in items:
            is_block = isinstance(item, ast.BlockDef)
            self._gap(0, first, force=is_block or previous_block)     # before the item's comments
            first = self._leading(_start(item), 0, first)
            self._gap(item.span.line, first)
            self._item(item)
            first, previous_block = False, is_block
        self._leading(_END, 0, first)
        return _render(self.out)


def _end_of(span: Span) -> Position:
    return (span.end_line, span.end_col)


def _render(lines: list[_Line]) -> str:
    """Join the lines, aligning the trailing comments of each run of consecutive lines."""
    text: list[str] = []
    run: list[_Line] = []

    def flush() -> None:
        column = max(len(line.code) for line in run) + 2
        text.extend(line.code.ljust(column) + (line.comment or "") for line in run)
        run.clear()

    for line in lines:
        if line.comment is not None:
            run.append(line)
            continue
        if run:
            flush()
        text.append(line.code.rstrip())
    if run:
        flush()
    while text and not text[-1]:
        text.pop()
    return "\n".join(text) + "\n" if text else ""


def _shape(node: object) -> object:
    """A node without its spans, for comparing two parses of the same program."""
    if is_dataclass(node) and not isinstance(node, type):
        return (type(node).__name__,) + tuple(
            _shape(getattr(node, f.name)) for f in fields(node) if f.name not in ("span", "name_span", "path"))
    if isinstance(node, (tuple, list)):
        return tuple(_shape(n) for n in node if not isinstance(n, Span))
    return node


def same_program(a: ast.Module, b: ast.Module) -> bool:
    """Whether two parses hold the same program, whatever their layout."""
    return _shape(a) == _shape(b)


def format_source(text: str, file: str = "<string>", width: int = DEFAULT_WIDTH) -> str:
    """The canonical layout of `text`; raises CompileError when it does not parse."""
    module = parse(text, file)
    result = _Formatter(text, module, width).run()
    again = parse(result, file)
    comments = [t.text for t in scan(text) if t.kind == "comment"]
    if not same_program(module, again) or [t.text for t in scan(result) if t.kind == "comment"] != comments:
        raise FormatterBug(f"formatting {file} would change its meaning; the file is left as it is")
    return result
