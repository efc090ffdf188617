"""Diagnostics as data: a code, a severity, spans, a message and a hint.

Rendering is separate from raising: stages collect `Diagnostic`s (or raise a
`CompileError` carrying them) and the CLI renders them with a caret under the
offending span.
"""
from __future__ import annotations

import difflib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from compiler.diagnostics.codes import CODES, Code, Severity
from compiler.diagnostics.records import record


@record
class Span:
    """A region of a source file; lines and columns are 1-based, end exclusive."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


UNKNOWN_SPAN = Span("<unknown>", 1, 1, 1, 1)


@record
class Note:
    span: Span
    message: str


@record
class Diagnostic:
    """`code` is the number (DLC007); stages pass a registered `Code` constant."""

    code: str
    message: str
    span: Span
    severity: Severity = Severity.ERROR
    notes: tuple[Note, ...] = ()
    hint: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", str(self.code))   # a Code constant is stored as its number

    @property
    def code_name(self) -> str:
        """The code's kebab-case name (`shape-mismatch`), or the number for an unregistered code."""
        registered = CODES.get(self.code)
        return registered.name if registered else self.code

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR


class CompileError(Exception):
    """Raised by a stage that cannot continue; carries one or more diagnostics."""

    def __init__(self, diagnostics: list[Diagnostic] | Diagnostic):
        self.diagnostics = diagnostics if isinstance(diagnostics, list) else [diagnostics]
        super().__init__("; ".join(d.message for d in self.diagnostics))


def error(code: Code | str, message: str, span: Span, hint: str | None = None,
          notes: tuple[Note, ...] = ()) -> CompileError:
    return CompileError(Diagnostic(code, message, span, Severity.ERROR, notes, hint))


def suggest(name: str, candidates) -> str | None:
    """A "did you mean" hint for a misspelled name, or None."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None


@dataclass
class SourceCache:
    """Source text by file name, so the renderer can show the offending line."""

    texts: dict[str, str] = field(default_factory=dict)

    def line(self, file: str, line: int) -> str | None:
        text = self.texts.get(file)
        if text is None:
            try:
                text = Path(file).read_text(encoding="utf-8", errors="replace")
            except OSError:
                return None
            self.texts[file] = text
        lines = text.splitlines()
        return lines[line - 1] if 0 < line <= len(lines) else None


def use_color(stream=sys.stderr) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    return hasattr(stream, "isatty") and stream.isatty()


_COLORS = {"error": "\033[1;31m", "warning": "\033[1;33m", "note": "\033[1;36m",
           "hint": "\033[1;32m", "bold": "\033[1m", "reset": "\033[0m"}


def _paint(text: str, style: str, color: bool) -> str:
    return f"{_COLORS[style]}{text}{_COLORS['reset']}" if color else text


def _excerpt(span: Span, sources: SourceCache, color: bool, style: str) -> list[str]:
    source_line = sources.line(span.file, span.line)
    if source_line is None:
        return []
    source_line = source_line.expandtabs(4)[:400]
    width = (span.end_col - span.col) if span.end_line == span.line else len(source_line) - span.col + 1
    width = max(1, min(width, max(1, len(source_line) - span.col + 1)))
    gutter = f"{span.line:>4} | "
    caret = " " * (len(gutter) - 2) + "| " + " " * (span.col - 1) + "^" * width
    return [gutter + source_line, _paint(caret, style, color)]


def render(diag: Diagnostic, sources: SourceCache, color: bool = False) -> str:
    """Render one diagnostic as text: location, message, excerpt, notes, hint."""
    sev = diag.severity.value
    head = f"{_paint(str(diag.span), 'bold', color)}: {_paint(sev, sev, color)}[{diag.code}]: {diag.message}"
    lines = [head, *_excerpt(diag.span, sources, color, sev)]
    for note in diag.notes:
        lines.append(f"  {_paint('note', 'note', color)}: {note.span}: {note.message}")
        lines.extend("  " + line for line in _excerpt(note.span, sources, color, "note"))
    if diag.hint:
        lines.append(f"  {_paint('hint', 'hint', color)}: {diag.hint}")
    return "\n".join(lines)
