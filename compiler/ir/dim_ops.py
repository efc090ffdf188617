"""Operations on canonical dimensions (ir/dims.py describes the form): exact division,
floor and ceil, min and max, and the sign reasoning that decides comparisons.

Each returns a canonical Dim, normalizing as it builds: a floor pulls the integer part of
every coefficient out and folds nested floors; min/max drop an argument another one provably
bounds; a division by a sum tries exact polynomial division before it leaves a reciprocal.
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Iterable

from compiler.ir.dims import (ONE, Atom, Coeff, Dim, Monomial, SymbolicComparison, atom_power,
                              integer_monomial, normalized, const, dim, from_terms)


def divide(n: Dim, d: Dim) -> Dim:
    """Exact division; a sum that does not divide becomes a reciprocal atom."""
    if d.value is not None:
        if d.value == 0:
            raise ZeroDivisionError("division of a dimension by zero")
        return n * (Fraction(1) / d.value)
    if len(d.terms) == 1:
        m, c = d.terms[0]
        return n * from_terms({tuple((a, -e) for a, e in m): Fraction(1) / c})
    quotient = _exact_quotient(n, d)
    if quotient is not None:
        return quotient
    lead = d.terms[-1][1]
    monic = d * (Fraction(1) / lead)
    return n * atom_power(Atom("recip", args=(monic,))) * (Fraction(1) / lead)


def _exact_quotient(n: Dim, d: Dim, limit: int = 256) -> Dim | None:
    """n / d by polynomial long division (graded order), or None when it leaves a remainder."""
    if not all(e > 0 for x in (n, d) for m, _ in x.terms for _, e in m):
        return None
    atoms = sorted({a for x in (n, d) for m, _ in x.terms for a, _ in m}, key=lambda a: a.key)

    def order(m: Monomial) -> tuple:
        exps = dict(m)
        return (sum(exps.values()), tuple(exps.get(a, 0) for a in atoms))
    lead_m, lead_c = max(d.terms, key=lambda t: order(t[0]))
    quotient: dict[Monomial, Coeff] = {}
    rest = n
    for _ in range(limit):
        if rest.value == 0:
            return from_terms(quotient)
        m, c = max(rest.terms, key=lambda t: order(t[0]))
        exps = dict(m)
        for a, e in lead_m:
            exps[a] = exps.get(a, 0) - e
        if any(e < 0 for e in exps.values()):
            return None
        q_m = tuple(sorted(((a, e) for a, e in exps.items() if e), key=lambda t: t[0].key))
        q_c = Fraction(c) / lead_c
        quotient[q_m] = quotient.get(q_m, 0) + q_c
        rest = rest - d * Dim(((q_m, normalized(q_c)),))
    return None


def floor(x: Any) -> Dim:
    """floor(x), normalized (see the module docstring)."""
    x = dim(x)
    if x.value is not None:
        return const(math.floor(x.value))
    if x.is_integer:
        return x
    whole: dict[Monomial, Coeff] = {}
    rest: dict[Monomial, Coeff] = {}
    for m, c in x.terms:
        if integer_monomial(m) or not m:
            w = math.floor(c)
            if w:
                whole[m] = w
            if c - w:
                rest[m] = c - w
        else:
            rest[m] = c
    fraction = from_terms(rest)
    if fraction.value is not None:           # a constant in [0, 1)
        return from_terms(whole)
    return from_terms(whole) + _floor_atom(fraction)


def _floor_atom(x: Dim) -> Dim:
    """floor(x) for x with no integer part; `floor((floor(y) + m)/n) = floor((y + m)/n)`."""
    if all(integer_monomial(m) or not m for m, _ in x.terms):
        denominator = math.lcm(*(Fraction(c).denominator for _, c in x.terms))
        numerator = x * denominator
        inner = [m for m, c in numerator.terms if c == 1 and len(m) == 1 and m[0][1] == 1 and m[0][0].kind == "floor"]
        if len(inner) == 1 and numerator.is_integer:
            atom = inner[0][0][0]
            return floor((numerator - atom_power(atom) + atom.args[0]) / denominator)
    return atom_power(Atom("floor", args=(x,)))


def ceil(x: Any) -> Dim:
    """ceil(x): for x = N/D with N integer-valued, floor((N + D - 1)/D), the form `//` gives;
    otherwise -floor(-x)."""
    x = dim(x)
    denominator = math.lcm(*(Fraction(c).denominator for _, c in x.terms)) if x.terms else 1
    if (x * denominator).is_integer:
        return floor(x + Fraction(denominator - 1, denominator))
    return -floor(-x)


def modulo(a: Dim, b: Dim) -> Dim:
    if a.value is not None and b.value is not None:
        if b.value == 0:
            raise ZeroDivisionError("modulo of a dimension by zero")
        return const(a.value % b.value)
    return a - b * floor(divide(a, b))


def minimum(*args: Any) -> Dim:
    return _extremum("min", args)


def maximum(*args: Any) -> Dim:
    return _extremum("max", args)


def _extremum(kind: str, args: Iterable[Any]) -> Dim:
    flat: list[Dim] = []
    for a in map(dim, args):
        atom = a.terms[0][0][0][0] if len(a.terms) == 1 and a.terms[0][1] == 1 and len(a.terms[0][0]) == 1 \
            and a.terms[0][0][0][1] == 1 else None
        flat.extend(atom.args if atom is not None and atom.kind == kind else (a,))
    keep: list[Dim] = []
    for a in flat:                      # drop an argument another one provably bounds
        if any(_sign(a - b) in ((1, 0) if kind == "min" else (-1, 0)) for b in keep):
            continue
        keep = [b for b in keep if _sign(b - a) not in ((1, 0) if kind == "min" else (-1, 0))] + [a]
    if len(keep) == 1:
        return keep[0]
    keep.sort(key=lambda d: d.key)
    return atom_power(Atom(kind, args=tuple(keep)))


def _lower_bound(d: Dim) -> Coeff | None:
    """A lower bound of d over all positive integer values of its symbols, when one is evident:
    a polynomial over symbols (each >= 1) whose non-constant coefficients are all positive is at
    least the sum of its coefficients."""
    if d.value is not None:
        return d.value
    if all(c > 0 for m, c in d.terms if m) and all(a.kind == "sym" and e > 0 for m, _ in d.terms for a, e in m):
        return sum(c for _, c in d.terms)
    return None


def decide(d: Dim, strict: bool, negative: bool) -> bool:
    """`d < 0` / `d <= 0` (negative) or `d > 0` / `d >= 0`, when it holds or fails everywhere."""
    if negative:
        d = -d
    low, high = _lower_bound(d), _lower_bound(-d)
    if low is not None and (low > 0 or (not strict and low >= 0)):
        return True
    if high is not None and (-high < 0 or (strict and -high <= 0)):
        return False
    raise SymbolicComparison(f"whether {d} {'>' if strict else '>='} 0 depends on the dimensions' values")


def _sign(d: Dim) -> int | None:
    """+1 / 0 / -1 when the sign of d holds for every positive integer value of its symbols."""
    low, high = _lower_bound(d), _lower_bound(-d)
    if low is not None and low > 0:
        return 1
    if high is not None and high > 0:
        return -1
    return 0 if d.value == 0 else None


def prod_dims(items: Iterable[Any]) -> Dim:
    """The product of dimensions (1 for none)."""
    return math.prod(items, start=ONE)
