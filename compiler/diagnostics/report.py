"""Machine-readable diagnostics for CI: JSON (our versioned schema), GitHub
workflow annotations, and SARIF 2.1.0 for code-scanning tools."""
from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from compiler import __version__
from compiler.diagnostics import CODES, Diagnostic, Span
from compiler.diagnostics.codes import Code
from compiler.diagnostics.reference import DOCUMENT, anchor

JSON_SCHEMA_VERSION = 1
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SRCROOT = "%SRCROOT%"
# The project's home; `helpUri` points into the diagnostics reference there, which the
# repository ships (docs/diagnostics.md, generated from the registry: one section per code).
# DLC_DOCS_URL overrides where that document lives (a fork, an internal mirror).
REPOSITORY_URL = "https://github.com/dlc-compiler/dlc"
DOCS_URL = f"{REPOSITORY_URL}/blob/main/{DOCUMENT}"


@lru_cache(maxsize=8)
def repository_root(start: str | None = None) -> Path:
    """The enclosing git work tree of the working directory (CI's checkout), else the directory itself."""
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder
    return here


def repository_path(file: str) -> str | None:
    """`file` relative to the repository root, or None when it lies outside (the bundled stdlib)."""
    if file.startswith("<"):
        return None
    try:
        return Path(file).resolve().relative_to(repository_root()).as_posix()
    except ValueError:
        return None


def _shown_path(file: str) -> str:
    return repository_path(file) or file


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
        props = (f"file={_escape_property(_shown_path(s.file))},line={s.line},col={s.col},endLine={s.end_line},"
                 f"endColumn={s.end_col},title={_escape_property(d.code)}")
        message = d.message + (f"\nhint: {d.hint}" if d.hint else "")
        lines.append(f"::{'error' if d.is_error else 'warning'} {props}::{_escape_data(message)}")
    return "\n".join(lines)


def _artifact(file: str) -> dict[str, Any]:
    relative = repository_path(file)
    if relative is not None:
        return {"uri": relative, "uriBaseId": SRCROOT}
    if file.startswith("<"):
        return {"uri": file.strip("<>")}
    return {"uri": Path(file).resolve().as_uri()}


def _location(span: Span, message: str | None = None) -> dict[str, Any]:
    loc: dict[str, Any] = {"physicalLocation": {
        "artifactLocation": _artifact(span.file),
        "region": {"startLine": span.line, "startColumn": span.col,
                   "endLine": max(span.end_line, span.line), "endColumn": max(span.end_col, span.col + 1)}}}
    if message:
        loc["message"] = {"text": message}
    return loc


def _rule(c: Code) -> dict[str, Any]:
    from compiler.diagnostics.explanations import EXPLANATIONS
    base = os.environ.get("DLC_DOCS_URL", DOCS_URL)
    explanation = EXPLANATIONS.get(c.code, c.summary)
    help_text = f"{explanation}\n\n(`dlc explain {c.code}` prints this offline.)"
    return {"id": c.code, "name": c.name, "shortDescription": {"text": c.summary},
            "fullDescription": {"text": explanation}, "help": {"text": help_text},
            "helpUri": f"{base}#{anchor(c.code)}", "defaultConfiguration": {"level": c.severity.value}}


def to_sarif(diagnostics: list[Diagnostic], exit_code: int | None = None, argv: list[str] | None = None) -> str:
    """SARIF 2.1.0: paths relative to %SRCROOT% (the repository), rule metadata, the invocation."""
    rules = [_rule(c) for c in CODES.values()]
    index = {code: i for i, code in enumerate(CODES)}
    results = []
    for d in diagnostics:
        result: dict[str, Any] = {"ruleId": d.code, "level": "error" if d.is_error else "warning",
                                  "message": {"text": d.message + (f" (hint: {d.hint})" if d.hint else "")},
                                  "locations": [_location(d.span)]}
        if d.code in index:
            result["ruleIndex"] = index[d.code]
        if d.notes:
            result["relatedLocations"] = [dict(_location(n.span, n.message), id=i) for i, n in enumerate(d.notes)]
        results.append(result)
    invocation: dict[str, Any] = {"executionSuccessful": True,
                                  "workingDirectory": {"uri": Path.cwd().resolve().as_uri() + "/"}}
    if argv is not None:
        invocation["arguments"] = list(argv)
    if exit_code is not None:
        invocation["exitCode"] = exit_code
    run = {"tool": {"driver": {"name": "dlc", "version": __version__, "informationUri": REPOSITORY_URL, "rules": rules}},
           "originalUriBaseIds": {SRCROOT: {"uri": repository_root().as_uri() + "/"}},
           "invocations": [invocation], "results": results}
    doc = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
    return json.dumps(doc, indent=2)
