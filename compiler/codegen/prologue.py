"""The start of a generated `__init__`: the block's compile-time statements as Python.

`require` becomes a ValueError raised before any layer is built, `let` a local,
a static `if` or `for` around them a Python `if` or `for`, and `rename` rules
that depend on parameters a REFERENCE_RENAMES tuple computed from them.
"""
from __future__ import annotations

import re
from typing import Callable

from compiler.codegen.expressions import Unprintable, to_python
from compiler.codegen.scope import Scope
from compiler.diagnostics import Span
from compiler.syntax import ast

Where = Callable[[Span], str]


def static_renames(block: ast.BlockDef, scope: Scope) -> list[tuple[str, str]] | None:
    """The block's renames when none depends on a parameter (a class constant), else None."""
    nested = _nested_renames(block.body)
    top = [s for s in block.body if isinstance(s, ast.Rename)]
    if nested or any(_interpolates(text, scope) for s in top for text in (s.source, s.target)):
        return None
    return [(s.source, s.target) for s in top]


def _nested_renames(stmts) -> bool:
    for stmt in stmts:
        bodies = [stmt.then, stmt.orelse] if isinstance(stmt, ast.If) else [stmt.body] if isinstance(stmt, ast.For) else []
        if any(isinstance(s, ast.Rename) for body in bodies for s in body) or any(_nested_renames(b) for b in bodies):
            return True
    return False


def _interpolates(text: str, scope: Scope) -> bool:
    return any(name in scope.locals for name in re.findall(r"\{(\w+)\}", text))


def prologue(block: ast.BlockDef, scope: Scope, where: Where, computed_renames: bool) -> list[str]:
    """Lines that check and compute the block's compile-time values, before its layers."""
    renames = scope.local("renames") if computed_renames else None
    lines = _statements(block.body, scope, where, renames)
    if renames is None:
        return lines
    return [f"{renames} = []", *lines, f"self.REFERENCE_RENAMES = tuple({renames})"]


def _statements(stmts, scope: Scope, where: Where, renames: str | None) -> list[str]:
    lines: list[str] = []
    for stmt in stmts:
        try:
            lines += _statement(stmt, scope, where, renames)
        except Unprintable:
            continue          # a value of the shapes, not of the parameters: checked at compile time only
    return lines


def _statement(stmt: ast.Stmt, scope: Scope, where: Where, renames: str | None) -> list[str]:
    name = scope.init_name
    if isinstance(stmt, ast.Require):
        message = (stmt.message or f"requirement `{stmt.cond}` does not hold") + f" ({where(stmt.span)})"
        return [f"if {to_python(negation(stmt.cond), name)}:", f"    raise ValueError({message!r})"]
    if isinstance(stmt, ast.Let):
        return [f"{name(stmt.name)} = {to_python(stmt.value, name)}"]
    if isinstance(stmt, ast.Rename) and renames is not None:
        return [f"{renames}.append(({_rename_text(stmt.source, scope)}, {_rename_text(stmt.target, scope)}))"]
    if isinstance(stmt, ast.For):
        body = _statements(stmt.body, scope, where, renames)
        head = f"for {name(stmt.var)} in {to_python(stmt.iterable, name)}:"
        return [head, *_indent(body)] if body else []
    if isinstance(stmt, ast.If):
        then, orelse = (_statements(b, scope, where, renames) for b in (stmt.then, stmt.orelse))
        cond = to_python(stmt.cond, name)
        if not then and not orelse:
            return []
        if not then:
            return [f"if {to_python(negation(stmt.cond), name)}:", *_indent(orelse)]
        return [f"if {cond}:", *_indent(then), *(["else:", *_indent(orelse)] if orelse else [])]
    return []


def _rename_text(text: str, scope: Scope) -> str:
    """A rename prefix as a Python string: names in scope interpolated, other {placeholders} kept."""
    if not _interpolates(text, scope):
        return f'"{text}"'
    parts = re.split(r"(\{\w+\})", text)
    out = "".join(p if not p.startswith("{") else "{" + scope.locals[p[1:-1]] + "}" if p[1:-1] in scope.locals
                  else "{{" + p[1:-1] + "}}" for p in parts)
    return f'f"{out}"'


_NEGATED = {"==": "!=", "!=": "==", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}


def negation(e: ast.Expr) -> ast.Expr:
    """`not e`, read naturally: `a == b` -> `a != b`, `not x` -> `x`."""
    if isinstance(e, ast.Compare):
        return ast.Compare(e.span, _NEGATED[e.op], e.left, e.right)
    if isinstance(e, ast.Not):
        return e.operand
    return ast.Not(e.span, e)


def _indent(lines: list[str]) -> list[str]:
    return ["    " + line for line in lines]
