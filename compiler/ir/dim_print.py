"""Printing dimensions: one printer, two styles.

Diagnostics read `B*S`, `(H + 1)//2 - 1`, `min(a, b)`, `d_model/heads` (powers `**`, which
`dim_str` shows as `^`); generated Python reads `B * S`, `(H + 1) // 2 - 1` over the names the
code has at run time, and refuses a dimension that is not an integer expression (an exact
division that left a fraction has no integer meaning in the generated code).

A floor prints as floor division over a common denominator: `floor(H/2 + 1/2)` is
`(H + 1)//2`. Terms print highest degree first, then in the canonical order of ir/dims.py,
the constant last, so every form prints one way on every run.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Callable

from compiler.ir.dims import Atom, Dim, Monomial, atom_power, const


@dataclass(frozen=True)
class Style:
    mul: str = "*"
    floordiv: str = "//"
    symbol: Callable[[str], str] = str
    number: Callable[[int], str] = str
    power: Callable[[str, int], str] = lambda base, e: f"{base}**{e}"
    python: bool = False           # generated code: integer expressions only


DIAGNOSTIC = Style()


def render(d: Dim, style: Style = DIAGNOSTIC) -> str:
    """`d` as text in `style`."""
    if d.value is not None:
        return _number(d.value, style)
    text = ""
    for m, c in _print_order(d):
        negative, body = _term(m, c, style)
        if not text:
            if negative and len(m) == 1 and m[0][0].kind == "floor" and abs(c) == 1:
                body = f"({body})"       # `-(H + 1)//2` would floor the negated numerator
            text = ("-" if negative else "") + body
        else:
            text += (" - " if negative else " + ") + body
    return text


def _print_order(d: Dim) -> list[tuple[Monomial, object]]:
    def degree(m: Monomial) -> int:
        return sum(e for _, e in m if e > 0)
    terms = [t for t in d.terms if t[0]]
    # stable: canonical order within a degree, positive terms first (`2*x - B`, not `-B + 2*x`)
    terms.sort(key=lambda t: (-degree(t[0]), t[1] < 0))
    return terms + [t for t in d.terms if not t[0]]


def _number(value, style: Style) -> str:
    if type(value) is Fraction:
        if style.python:
            raise ValueError(f"cannot render the fraction {value} as a Python integer expression")
        return f"{'-' if value < 0 else ''}{_number(abs(value.numerator), style)}/{value.denominator}"
    return f"-{style.number(-value)}" if value < 0 else style.number(value)


def _term(m: Monomial, c, style: Style) -> tuple[bool, str]:
    """(negative, the term's text without its sign)."""
    c = Fraction(c)
    top = [(a, e) for a, e in m if e > 0 and a.kind != "recip"]
    bottom = [(a, -e) for a, e in m if e < 0] + [(a, e) for a, e in m if e > 0 and a.kind == "recip"]
    factors = [] if c.numerator in (1, -1) and top else [_factor_number(abs(c.numerator), style)]
    alone = len(top) == 1 and not factors and not bottom and c.denominator == 1
    factors += [_power(_atom(a, style, alone), e, style) for a, e in top]
    text = style.mul.join(factors)
    denominators = ([_factor_number(c.denominator, style)] if c.denominator != 1 else []) + \
        [_power(_atom(a, style, len(bottom) == 1 and c.denominator == 1), e, style) for a, e in bottom]
    if denominators:
        if style.python:
            raise ValueError(f"cannot render a division in {text} as a Python integer expression")
        joined = style.mul.join(denominators)
        text += "/" + (joined if len(denominators) == 1 else f"({joined})")
    return c < 0, text


def _factor_number(n: int, style: Style) -> str:
    text = style.number(n)
    return f"({text})" if " " in text else text


def _power(text: str, e: int, style: Style) -> str:
    return text if e == 1 else style.power(text, e)


def _atom(a: Atom, style: Style, alone: bool) -> str:
    """An atom as a factor; `alone` when nothing multiplies it (a floor needs no parentheses)."""
    if a.kind == "sym":
        return style.symbol(a.name)
    if a.kind in ("min", "max"):
        return f"{a.kind}({', '.join(render(x, style) for x in a.args)})"
    if a.kind == "recip":
        return f"({render(a.args[0], style)})"
    text = _floor(a.args[0], style)
    return text if alone else f"({text})"


def _floor(x: Dim, style: Style) -> str:
    """floor(x) as `numerator // denominator`, both integer expressions."""
    scale = math.lcm(*(Fraction(c).denominator for _, c in x.terms))
    lowest: dict[Atom, int] = {}
    for m, _ in x.terms:
        for a, e in m:
            if e < 0:
                lowest[a] = max(lowest.get(a, 0), -e)
    denominator = const(scale)
    for a, e in sorted(lowest.items(), key=lambda t: t[0].key):
        denominator = denominator * atom_power(a, e)
    numerator = x * denominator
    # the numbers of a floor are its arithmetic (`(H + 31)//32`), not the sizes a block's names explain
    style = replace(style, number=str)
    if not numerator.is_integer:
        if style.python:
            raise ValueError(f"cannot render floor({render(x)}) as a Python integer expression")
        return f"floor({render(x, style)})"
    top, bottom = render(numerator, style), render(denominator, style)
    if not _simple(numerator, top):
        top = f"({top})"
    if not _simple(denominator, bottom):
        bottom = f"({bottom})"
    return f"{top}{style.floordiv}{bottom}"


def _simple(d: Dim, text: str) -> bool:
    """A number or a symbol, which needs no parentheses beside `//`."""
    return (d.is_int and d.value >= 0 or d.is_symbol) and " " not in text
