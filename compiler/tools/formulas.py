"""Printing counts: `85,017,600·B·S + 18,432·B·S²`, `1.41 G`, `109,482,240`."""
from __future__ import annotations

import sympy

_SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def formula(expr: sympy.Expr) -> str:
    """A count as a readable polynomial in the free dimensions, largest power first.

    Sizes of strided convolutions hold floor() terms; those print in sympy's own syntax.
    """
    expr = sympy.expand(sympy.sympify(expr))
    if expr.is_Integer:
        return f"{int(expr):,}"
    if expr.has(sympy.floor, sympy.ceiling, sympy.Min, sympy.Max):
        return str(expr)
    return " + ".join(_term(t) for t in expr.as_ordered_terms()).replace("+ -", "- ")


def _term(term: sympy.Expr) -> str:
    coeff, rest = term.as_coeff_Mul()
    factors = []
    for factor in sympy.Mul.make_args(rest):
        base, exp = factor.as_base_exp()
        if exp.is_Integer and exp > 1 and base.is_Symbol:
            factors.append(f"{base}{str(int(exp)).translate(_SUPERSCRIPTS)}")
        else:
            factors.append(str(factor))
    factors.sort()
    if coeff.is_Integer:
        head = [] if coeff == 1 else [f"{int(coeff):,}"]
    else:
        head = [str(coeff)]
    return "·".join(head + factors)


def has_floor(expr: sympy.Expr) -> bool:
    return sympy.sympify(expr).has(sympy.floor, sympy.ceiling, sympy.Min, sympy.Max)


def human(n: int | float, unit: str = "") -> str:
    """3 significant digits with a decimal prefix: 1.41 G, 512 k."""
    for scale, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.3g} {prefix}{unit}"
    return f"{n:g} {unit}".rstrip()


def human_bytes(n: int) -> str:
    for scale, prefix in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= scale:
            return f"{n / scale:.3g} {prefix}"
    return f"{n} B"
