"""Shape comments in the block's parameter names: `# [B, T, d_model]`,
`# [B, 4 * channels, (H - 1) // stride + 1, (W - 1) // stride + 1]`.

A specialization knows its dimensions as numbers and symbols.  A number that is the
value of exactly one parameter or `let` (or a small multiple of one) is written as
that name; a number no name explains stays a number, and merging drops a comment
that differs between the specializations of one class (merge.py).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import sympy

from compiler.ir.types import TensorType

_MULTIPLES = (2, 3, 4)


def dimension_names(values: dict[str, Any]) -> dict[int, str]:
    """Numbers a block's names explain, each to the one name (or multiple of one) it is."""
    by_value: dict[int, set[str]] = {}
    for name, value in values.items():
        if isinstance(value, int) and not isinstance(value, bool) and value > 2:    # 1 and 2 are everywhere
            by_value.setdefault(value, set()).add(name)
    found = {v: next(iter(names)) for v, names in by_value.items() if len(names) == 1}
    for value, names in list(by_value.items()):
        if len(names) != 1 or value < 16:      # small numbers coincide too often to name their multiples
            continue
        for k in _MULTIPLES:
            if k * value not in by_value and k * value not in found:
                found.setdefault(k * value, f"{k} * {next(iter(names))}")
    return found


def shape_text(t: TensorType, names: dict[int, str]) -> str:
    return "[" + ", ".join(_dim(sympy.sympify(d), names, top=True) for d in t.shape) + "]"


def _dim(e: sympy.Expr, names: dict[int, str], top: bool = False) -> str:
    if e.is_Integer:
        return names.get(int(e), str(int(e)))
    if e.is_Symbol:
        return str(e)
    if isinstance(e, sympy.floor):
        num, den = _numerator_and_denominator(e.args[0])
        return f"({_dim(num, names)}) // {_dim(den, names)}" if not num.is_Atom else f"{_dim(num, names)} // {_dim(den, names)}"
    if e.is_Add:
        terms = sorted(e.args, key=lambda a: a.is_Number)        # symbols first, the constant last
        text = ""
        for a in terms:
            part = _dim(a, names)
            text += (" - " + part[1:]) if text and part.startswith("-") else (" + " + part if text else part)
        return text
    if e.is_Mul:
        return " * ".join(f"({_dim(a, names)})" if a.is_Add else _dim(a, names) for a in e.args)
    return str(e)


@lru_cache(maxsize=4096)
def _numerator_and_denominator(e: sympy.Expr) -> tuple[sympy.Expr, sympy.Expr]:
    """`e` over a common denominator.  Cached: every line of a CNN's forward repeats the same few
    floor divisions in its shape comment, and sympy's `together` is most of the time printing them."""
    return sympy.fraction(sympy.together(e))
