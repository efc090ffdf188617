"""`dlc dump --stage ast`: the AST as indented constructor syntax, one node per line unless it
fits on one, with each statement's line:column in a comment.  Nodes that print as dlc source
(expressions, types, paths) show that source in backticks after their class name,
``Call`Linear(d, d)(x)` ``, rather than a deep tree.  Spans are left out of the constructors:
they would double the text, and the positions are in the comments."""
from __future__ import annotations

import dataclasses
from typing import Any

from compiler.diagnostics import Span
from compiler.syntax import ast

WIDTH = 100


def dump_ast(node: Any, width: int = WIDTH) -> str:
    return "\n".join(_lines(node, "", width)) + "\n"


def _fields(node: Any) -> list[tuple[str, Any]]:
    return [(f.name, getattr(node, f.name)) for f in dataclasses.fields(node) if f.name != "span"]


def _has_source_form(value: Any) -> bool:
    return isinstance(value, ast.Node) and type(value).__str__ is not object.__str__


def _flat(value: Any) -> str:
    """A value on one line."""
    if _has_source_form(value):
        return f"{type(value).__name__}`{value}`"
    if isinstance(value, Span):
        return f"@{value.line}:{value.col}"
    if dataclasses.is_dataclass(value) and isinstance(value, ast.Node):
        return f"{type(value).__name__}({', '.join(f'{k}={_flat(v)}' for k, v in _fields(value))})"
    if isinstance(value, tuple):
        return "(" + ", ".join(_flat(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


def _where(value: Any) -> str:
    return f"  # {value.span.line}:{value.span.col}" if isinstance(value, (ast.Stmt, ast.BlockDef)) else ""


def _lines(value: Any, indent: str, width: int, prefix: str = "", suffix: str = "") -> list[str]:
    flat = _flat(value)
    where = _where(value)
    if len(indent) + len(prefix) + len(flat) + len(suffix) <= width:
        return [f"{indent}{prefix}{flat}{suffix}{where}"]
    inner = indent + "  "
    if dataclasses.is_dataclass(value) and isinstance(value, ast.Node) and not _has_source_form(value):
        out = [f"{indent}{prefix}{type(value).__name__}({where}"]
        for name, field in _fields(value):
            out += _lines(field, inner, width, f"{name}=", ",")
        return out + [f"{indent}){suffix}"]
    if isinstance(value, tuple):
        out = [f"{indent}{prefix}("]
        for item in value:
            out += _lines(item, inner, width, "", ",")
        return out + [f"{indent}){suffix}"]
    return [f"{indent}{prefix}{flat}{suffix}"]
