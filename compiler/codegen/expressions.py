"""Spec expressions printed as Python.

A block is checked with concrete parameter values, but its class is emitted once, in
terms of its parameters: `Conv2d(in_channels, out_channels, 3, stride=stride)` is
printed from the expressions the spec wrote, not from the numbers one specialization
saw.  `to_python` prints those expressions; compile-time values that print as them
are ir/residual.py's.
"""
from __future__ import annotations

import json
from typing import Any, Callable

from compiler.syntax import ast
from compiler.syntax.ast import is_literal

__all__ = ["BUILTINS", "Unprintable", "is_literal", "names_in", "py_literal", "same_value", "to_python"]

# The DSL's builtins as Python (`range` gives a list in the DSL, a range here: both index and len()).
# A builtin that is no Python one is a runtime helper of the same name (dlc/runtime/helpers.py).
BUILTINS = {"make_divisible": "make_divisible", "sqrt": "math.sqrt", "min": "min", "max": "max", "len": "len", "int": "int", "float": "float",
            "range": "range"}

# Binding strengths, loosest first; the DSL's grammar orders its operators as Python does.
_TERNARY, _OR, _AND, _NOT, _COMPARE, _SUM, _PRODUCT, _NEGATION, _POWER, _POSTFIX = range(10)
_BINOP = {"+": _SUM, "-": _SUM, "*": _PRODUCT, "/": _PRODUCT, "//": _PRODUCT, "%": _PRODUCT, "@": _PRODUCT,
          "**": _POWER}


class Unprintable(Exception):
    """An expression that has no Python form where it is needed (a name not in scope there)."""


NameFn = Callable[[str], str]


def to_python(e: ast.Expr, name: NameFn) -> str:
    """`e` as Python source; `name` maps a spec name to its Python text or raises Unprintable."""
    return _print(e, name)[0]


def names_in(e: Any) -> set[str]:
    """Every name an expression reads."""
    if isinstance(e, ast.Name):
        return {e.id}
    found: set[str] = set()
    for value in vars(e).values() if isinstance(e, ast.Node) else ():
        items = value if isinstance(value, tuple) else (value,)
        for item in items:
            if isinstance(item, ast.Arg):
                found |= names_in(item.value)
            elif isinstance(item, ast.Expr):
                found |= names_in(item)
    return found


def _wrap(part: tuple[str, int], at_least: int) -> str:
    text, strength = part
    return f"({text})" if strength < at_least else text


def _print(e: ast.Expr, name: NameFn) -> tuple[str, int]:
    if isinstance(e, ast.Int):
        return str(e.value), _POSTFIX
    if isinstance(e, ast.Float):
        return repr(e.value), _POSTFIX
    if isinstance(e, ast.Str):
        return py_literal(e.value), _POSTFIX
    if isinstance(e, ast.Bool):
        return ("True" if e.value else "False"), _POSTFIX
    if isinstance(e, ast.NoneLit):
        return "None", _POSTFIX
    if isinstance(e, ast.Name):
        return name(e.id), _POSTFIX
    if isinstance(e, ast.ListLit):
        return "[" + ", ".join(to_python(i, name) for i in e.items) + "]", _POSTFIX
    if isinstance(e, ast.BinOp):
        return _binop(e, name)
    if isinstance(e, ast.Compare):
        left, right = _print(e.left, name), _print(e.right, name)
        return f"{_wrap(left, _SUM)} {e.op} {_wrap(right, _SUM)}", _COMPARE
    if isinstance(e, ast.BoolOp):
        strength = _OR if e.op == "or" else _AND
        left, right = _print(e.left, name), _print(e.right, name)
        return f"{_wrap(left, strength)} {e.op} {_wrap(right, strength + 1)}", strength
    if isinstance(e, ast.Not):
        return f"not {_wrap(_print(e.operand, name), _NOT)}", _NOT
    if isinstance(e, ast.Neg):
        return f"-{_wrap(_print(e.operand, name), _NEGATION)}", _NEGATION
    if isinstance(e, ast.Ternary):
        cond, then, orelse = (_print(x, name) for x in (e.cond, e.then, e.orelse))
        return f"{_wrap(then, _OR)} if {_wrap(cond, _OR)} else {_wrap(orelse, _TERNARY)}", _TERNARY
    if isinstance(e, ast.Index):
        return f"{_wrap(_print(e.target, name), _POSTFIX)}[{to_python(e.index, name)}]", _POSTFIX
    if isinstance(e, ast.Call) and isinstance(e.func, ast.Name) and e.func.id in BUILTINS:
        if any(a.name for a in e.args):
            raise Unprintable(str(e))
        return f"{BUILTINS[e.func.id]}({', '.join(to_python(a.value, name) for a in e.args)})", _POSTFIX
    raise Unprintable(str(e))


def _binop(e: ast.BinOp, name: NameFn) -> tuple[str, int]:
    strength = _BINOP[e.op]
    left, right = _print(e.left, name), _print(e.right, name)
    if e.op == "**":        # right-associative
        return f"{_wrap(left, _POSTFIX)} ** {_wrap(right, _NEGATION)}", _POWER
    return f"{_wrap(left, strength)} {e.op} {_wrap(right, strength + 1)}", strength


def py_literal(value: Any) -> str:
    """A compile-time value (int, float, bool, str, list, None) as a Python literal."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)        # escapes quotes, backslashes and every control or non-ASCII character
    if isinstance(value, (list, tuple)):
        items = ", ".join(py_literal(v) for v in value)
        return f"[{items}]" if isinstance(value, list) else f"({items}{',' if len(value) == 1 else ''})"
    return repr(value)


def same_value(a: Any, b: Any) -> bool:
    """Whether an attribute still holds the value its expression was recorded with (a pass that
    computed a new value leaves the old expression stale)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return a == b
