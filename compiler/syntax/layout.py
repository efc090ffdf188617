"""Line breaking for one statement: a tiny document model and a chooser among a few layouts.

A statement is a `Doc`: text, sequences, and bracketed comma-separated lists (argument lists,
parameter lists, list literals, tensor shapes).  Only lists break.  `layout` tries, in order:

1. everything on one line;
2. *hanging* the inputs of a layer application, `y = Block(config)(` then the inputs on the
   next line, eight columns in (the DSL's "configure, then apply" reads well split there);
3. *aligned* filling of one list, its items packed on lines that start under its first item,
   trying lists left to right;

and keeps the first layout whose lines all fit in the width (or, when none fits, the one that
overflows least).  The choice depends only on the statement's flat text, so formatting is
idempotent by construction.
"""
from __future__ import annotations

from dataclasses import dataclass

HANG_INDENT = 4     # continuation lines of a hanging list start one indent in, as in the stdlib


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Seq:
    parts: tuple[Doc, ...]


@dataclass(frozen=True)
class Bracket:
    """`open item, item, ... close`: the items may break onto several lines.  `hangs` marks the
    inputs of a layer application; `sep` ends every item but the last (a ternary chain's items
    need none: each starts with its `else`)."""

    open: str
    items: tuple[Doc, ...]
    close: str
    hangs: bool = False
    sep: str = ","


Doc = Text | Seq | Bracket


def seq(*parts: Doc | str) -> Seq:
    """A sequence; plain strings are text."""
    return Seq(tuple(Text(p) if isinstance(p, str) else p for p in parts))


@dataclass(frozen=True)
class _Placed:
    """Where one bracket landed in the flat text of a statement."""

    bracket: Bracket
    start: int          # offset of its opening character
    end: int            # offset just after its closing character


def flat(doc: Doc) -> str:
    return _flatten(doc, [])


def _flatten(doc: Doc, placed: list[_Placed], offset: int = 0) -> str:
    if isinstance(doc, Text):
        return doc.text
    if isinstance(doc, Seq):
        out = ""
        for part in doc.parts:
            out += _flatten(part, placed, offset + len(out))
        return out
    index = len(placed)
    placed.append(_Placed(doc, offset, offset))          # pre-order: outer lists before inner ones
    out = doc.open
    for i, item in enumerate(doc.items):
        joint = "" if i == 0 else doc.sep + " "
        out += joint + _flatten(item, placed, offset + len(out) + len(joint))
    out += doc.close
    placed[index] = _Placed(doc, offset, offset + len(out))
    return out


def _fill(head: str, items: list[str], sep: str, tail: str, column: int, width: int, hang: bool) -> list[str]:
    """`head` then the items packed greedily, continuation lines starting at `column`; `tail`
    (the list's closer and the rest of the statement) stays on the last item's line."""
    lines: list[str] = []
    current, fresh = head, True
    if hang:
        lines.append(head)
        current = " " * column
    for i, item in enumerate(items):
        piece = item + (sep if i < len(items) - 1 else tail)
        if not fresh and len(current) + 1 + len(piece) > width:
            lines.append(current)
            current, fresh = " " * column, True
        current += piece if fresh else " " + piece
        fresh = False
    lines.append(current)
    return lines


def _item_texts(bracket: Bracket) -> list[str]:
    return [flat(item) for item in bracket.items]


def _opened(text: str, p: _Placed) -> str:
    return text[: p.start + len(p.bracket.open)]


def _aligned(text: str, p: _Placed, width: int, rest_end: int | None = None) -> list[str]:
    head = _opened(text, p)
    tail = p.bracket.close + text[p.end: rest_end]
    return _fill(head, _item_texts(p.bracket), p.bracket.sep, tail, len(head), width, hang=False)


def _hung(first: str, text: str, q: _Placed, column: int, width: int) -> list[str]:
    return _fill(first, _item_texts(q.bracket), q.bracket.sep, q.bracket.close + text[q.end:], column, width, True)


def _candidates(doc: Doc, indent: int, width: int) -> list[list[str]]:
    """Flat; one hanging list; one aligned list; an aligned list then a later hanging one."""
    placed: list[_Placed] = []
    text = " " * indent + _flatten(doc, placed, indent)
    breakable = [p for p in placed if p.bracket.items]
    hanging = [q for q in breakable if q.bracket.hangs]
    column = indent + HANG_INDENT
    layouts = [[text]]
    layouts += [_hung(_opened(text, q), text, q, column, width) for q in hanging]
    layouts += [_aligned(text, p, width) for p in breakable]
    for p in breakable:
        for q in (q for q in hanging if q.start >= p.end):
            lines = _aligned(text, p, width, rest_end=q.start + len(q.bracket.open))
            layouts.append(lines[:-1] + _hung(lines[-1], text, q, column, width))
    return layouts


def _overflow(lines: list[str], width: int) -> int:
    return sum(max(0, len(line) - width) for line in lines)


def layout(doc: Doc, indent: int, width: int) -> list[str]:
    """The lines of one statement indented by `indent`, broken to fit `width` where possible."""
    layouts = _candidates(doc, indent, width)
    for lines in layouts:
        if _overflow(lines, width) == 0:
            return lines
    return min(layouts, key=lambda lines: _overflow(lines, width))   # min keeps the earliest of equals
