"""Machine-readable diagnostics for CI: JSON (our versioned schema), GitHub
workflow annotations, and SARIF 2.1.0 for code-scanning tools."""
from __future__ import annotations

import json
from typing import Any

from compiler import __version__
from compiler.diagnostics import CODES, Diagnostic, Span

JSON_SCHEMA_VERSION = 1
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _span(span: Span) -> dict[str, Any]:
    return {"file": span.file, "line": span.line, "column": span.col,
            "end_line": span.end_line, "end_column": span.end_col}


def to_json(diagnostics: list[Diagnostic], files: list[str]) -> str:
    """Schema v1: {version, tool, files, diagnostics: [{code, name, severity, message,
    span, notes: [{message, span}], hint}], summary: {errors, warnings}}."""
    items = [{"code": d.code, "name": d.code_name, "severity": d.severity.value, "message": d.message, "span": _span(d.span),
              "notes": [{"message": n.message, "span": _span(n.span)} for n in d.notes], "hint": d.hint}
             for d in diagnostics]
    errors = sum(d.is_error for d in diagnostics)
    doc = {"version": JSON_SCHEMA_VERSION, "tool": {"name": "dlc", "version": __version__}, "files": files,
           "diagnostics": items, "summary": {"errors": errors, "warnings": len(diagnostics) - errors}}
    return json.dumps(doc, indent=2)


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def to_github(diagnostics: list[Diagnostic]) -> str:
    """One `::error file=…,line=…,col=…::message` workflow command per diagnostic."""
    lines = []
    for d in diagnostics:
        s = d.span
        props = (f"file={_escape_property(s.file)},line={s.line},col={s.col},endLine={s.end_line},"
                 f"endColumn={s.end_col},title={_escape_property(d.code)}")
        message = d.message + (f"\nhint: {d.hint}" if d.hint else "")
        lines.append(f"::{'error' if d.is_error else 'warning'} {props}::{_escape_data(message)}")
    return "\n".join(lines)


def _location(span: Span, message: str | None = None) -> dict[str, Any]:
    loc: dict[str, Any] = {"physicalLocation": {
        "artifactLocation": {"uri": span.file},
        "region": {"startLine": span.line, "startColumn": span.col,
                   "endLine": span.end_line, "endColumn": max(span.end_col, span.col + 1)}}}
    if message:
        loc["message"] = {"text": message}
    return loc


def to_sarif(diagnostics: list[Diagnostic]) -> str:
    from compiler.diagnostics.explanations import EXPLANATIONS
    rules = [{"id": c.code, "name": c.name, "shortDescription": {"text": c.summary},
              "fullDescription": {"text": EXPLANATIONS.get(c.code, c.summary)},
              "defaultConfiguration": {"level": c.severity.value}} for c in CODES.values()]
    results = []
    for d in diagnostics:
        result: dict[str, Any] = {"ruleId": d.code, "level": "error" if d.is_error else "warning",
                                  "message": {"text": d.message + (f" (hint: {d.hint})" if d.hint else "")},
                                  "locations": [_location(d.span)]}
        if d.notes:
            result["relatedLocations"] = [dict(_location(n.span, n.message), id=i) for i, n in enumerate(d.notes)]
        results.append(result)
    doc = {"$schema": SARIF_SCHEMA, "version": "2.1.0",
           "runs": [{"tool": {"driver": {"name": "dlc", "version": __version__, "rules": rules}},
                     "results": results}]}
    return json.dumps(doc, indent=2)
