"""Dimension expressions: a small exact algebra over positive-integer symbols.

A `Dim` is kept in one canonical form, so that two dimensions are equal exactly when their
forms are equal (`B*S == S*B`, `x*y/y == x`, `(H - 1)//2 + 1 == (H + 1)//2`):

- a sum of monomials, each with a nonzero coefficient (an int, or a Fraction when an exact
  division left one), stored as a tuple sorted by the monomials' keys; the constant term is
  the monomial `()`;
- a monomial is a sorted tuple of (atom, exponent), exponents nonzero (negative after a
  division by a symbol: symbols are positive, so `y**-1` is always defined);
- an atom is a symbol, or `floor`/`min`/`max` of canonical dimensions (or, for a division by
  a sum that does not divide exactly, the reciprocal of a monic canonical sum). Atoms are
  interned by their key, so building one twice yields the same object.

Floors are normalized as they are built: the integer part of every coefficient of an
integer-valued monomial moves out (`floor(H/2 - 1/2) = floor(H/2 + 1/2) - 1`), a floor of an
integer-valued dimension is that dimension, and `floor((floor(y) + m)/n)` is `floor((y + m)/n)`.
`ceil(N/D)` is `floor((N + D - 1)/D)` and `a % b` is `a - b*floor(a/b)`, so neither needs
an atom of its own.

Constants are Dims too (interned for small values) that compare and hash like the Python
numbers they hold, so `dim(3) == 3` and dictionaries keyed by ints find them.  The operations
(division, floor, min/max, comparisons) are in ir/dim_ops.py, printing in ir/dim_print.py.
The compiler used sympy for this; this is the little of it the DSL needs, without sympy's
import (half a second of a cold `dlc check`).
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

Coeff = int | Fraction


class SymbolicComparison(TypeError):
    """An order comparison (`<`, `<=`, ...) that depends on the symbols' values."""


class Atom:
    """A symbol, floor(d), min(d, ...), max(d, ...) or 1/d (`kind` says which); interned."""

    __slots__ = ("kind", "name", "args", "key", "_hash", "integer", "symbols")
    _interned: dict[tuple, "Atom"] = {}
    _ORDER = {"sym": 0, "floor": 1, "min": 2, "max": 3, "recip": 4}

    def __new__(cls, kind: str, name: str = "", args: tuple["Dim", ...] = ()) -> "Atom":
        key = (cls._ORDER[kind], name) if kind == "sym" else (cls._ORDER[kind], tuple(a.key for a in args))
        found = cls._interned.get(key)
        if found is not None:
            return found
        self = object.__new__(cls)
        self.kind, self.name, self.args, self.key, self._hash = kind, name, args, key, hash(key)
        self.integer = kind in ("sym", "floor") or (kind != "recip" and all(a.is_integer for a in args))
        # a symbol atom's own Dim is symbol(name), which Dim.symbols adds; others hold their args'
        self.symbols = frozenset().union(*(a.symbols for a in args))
        cls._interned[key] = self
        return self

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(self.value) if self.value is not None else \
                hash(tuple((_mono_key(m), c) for m, c in self.terms))
        return self._hash

    def __repr__(self) -> str:
        return f"Atom({self.kind}, {self.name or self.args})"

    def __reduce__(self) -> tuple:
        return Atom, (self.kind, self.name, self.args)       # unpickling interns it again


Monomial = tuple[tuple[Atom, int], ...]


def _mono_key(m: Monomial) -> tuple:
    return tuple((a.key, e) for a, e in m)


class Dim:
    """A canonical dimension expression; build them with `symbol`, `const`/`dim` and operators."""

    __slots__ = ("terms", "value", "_hash", "_symbols", "_integer", "_key", "_name")

    def __init__(self, terms: tuple[tuple[Monomial, Coeff], ...]) -> None:
        self.terms = terms
        self.value: Coeff | None = None
        if not terms:
            self.value = 0
        elif len(terms) == 1 and not terms[0][0]:
            self.value = terms[0][1]
        self._hash: int | None = None      # computed on first use: most dims are never hashed
        self._symbols: frozenset | None = None
        self._integer: bool | None = None
        self._key: tuple | None = None
        self._name: str | None = None      # set by symbol(): the one Dim of each symbol

    # ------------------------------------------------------------------ properties
    @property
    def key(self) -> tuple:
        """A total order over canonical forms (used to sort atoms, and so every printed form)."""
        if self._key is None:
            self._key = tuple((_mono_key(m), c) for m, c in self.terms)
        return self._key

    @property
    def is_int(self) -> bool:
        """A known integer (`3`), not an expression."""
        return type(self.value) is int

    @property
    def is_number(self) -> bool:
        return self.value is not None

    @property
    def is_symbol(self) -> bool:
        return self._name is not None       # from_terms returns the interned symbol for a bare one

    @property
    def name(self) -> str:
        if self._name is None:
            raise AttributeError(f"{self} is not a symbol")
        return self._name

    @property
    def symbols(self) -> frozenset["Dim"]:
        """The symbols it depends on, floors and min/max included."""
        if self._symbols is None:
            found: set[Dim] = set()
            for m, _ in self.terms:
                for a, _ in m:
                    found.update((symbol(a.name),) if a.kind == "sym" else a.symbols)
            self._symbols = frozenset(found)
        return self._symbols

    @property
    def is_integer(self) -> bool:
        """Integer-valued for every positive integer value of its symbols."""
        if self._integer is None:
            self._integer = all(type(c) is int and integer_monomial(m) for m, c in self.terms)
        return self._integer

    # ------------------------------------------------------------------ Python protocol
    def __eq__(self, other: object) -> bool:
        if type(other) is Dim:
            return self is other or (self.value == other.value and self.terms == other.terms)
        if isinstance(other, (int, Fraction, float)) and not isinstance(other, bool):
            return self.value is not None and self.value == other
        return NotImplemented

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(self.value) if self.value is not None else \
                hash(tuple((_mono_key(m), c) for m, c in self.terms))
        return self._hash

    def __bool__(self) -> bool:
        return self.value != 0

    def __int__(self) -> int:
        if self.value is None:
            raise TypeError(f"the dimension {self} is not a number")
        return int(self.value)

    def __index__(self) -> int:
        if type(self.value) is not int:
            raise TypeError(f"the dimension {self} is not an integer")
        return self.value

    def __float__(self) -> float:
        if self.value is None:
            raise TypeError(f"the dimension {self} is not a number")
        return float(self.value)

    def __str__(self) -> str:
        from compiler.ir.dim_print import render
        return render(self)

    def __repr__(self) -> str:
        return f"Dim({self})"

    def __reduce__(self) -> tuple:
        return _rebuild, (self.terms,)

    def __add__(self, other: Any) -> "Dim":
        o = other if type(other) is Dim else coerce(other)
        if o is None:
            return NotImplemented
        if self.value is not None and o.value is not None:
            return const(self.value + o.value)
        merged = dict(self.terms)
        for m, c in o.terms:
            merged[m] = merged.get(m, 0) + c
        return from_terms(merged)

    __radd__ = __add__

    def __neg__(self) -> "Dim":
        return self * -1

    def __pos__(self) -> "Dim":
        return self

    def __sub__(self, other: Any) -> "Dim":
        o = coerce(other)
        return NotImplemented if o is None else self + o * -1

    def __rsub__(self, other: Any) -> "Dim":
        o = coerce(other)
        return NotImplemented if o is None else o + self * -1

    def __mul__(self, other: Any) -> "Dim":
        o = other if type(other) is Dim else coerce(other)
        if o is None:
            return NotImplemented
        if self.value is not None and o.value is not None:
            return const(self.value * o.value)
        if o.value is not None or self.value is not None:
            scale, d = (o.value, self) if o.value is not None else (self.value, o)
            if scale == 1:
                return d
            if scale == 0:
                return ZERO
            if len(d.terms) == 1:          # may become a bare symbol, which from_terms interns
                return from_terms({d.terms[0][0]: d.terms[0][1] * scale})
            return Dim(tuple((m, normalized(c * scale)) for m, c in d.terms))
        product: dict[Monomial, Coeff] = {}
        for m1, c1 in self.terms:
            for m2, c2 in o.terms:
                m = _mono_mul(m1, m2)
                product[m] = product.get(m, 0) + c1 * c2
        return from_terms(product)

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> "Dim":
        o = coerce(other)
        return NotImplemented if o is None else _ops.divide(self, o)

    def __rtruediv__(self, other: Any) -> "Dim":
        o = coerce(other)
        return NotImplemented if o is None else _ops.divide(o, self)

    def __floordiv__(self, other: Any) -> "Dim":
        o = coerce(other)
        return NotImplemented if o is None else _ops.floor(_ops.divide(self, o))

    def __rfloordiv__(self, other: Any) -> "Dim":
        o = coerce(other)
        return NotImplemented if o is None else _ops.floor(_ops.divide(o, self))

    def __mod__(self, other: Any) -> "Dim":
        o = coerce(other)
        return NotImplemented if o is None else _ops.modulo(self, o)

    def __rmod__(self, other: Any) -> "Dim":
        o = coerce(other)
        return NotImplemented if o is None else _ops.modulo(o, self)

    def __pow__(self, other: Any) -> "Dim":
        exponent = coerce(other)
        if exponent is None or type(exponent.value) is not int:
            raise TypeError(f"a dimension's power must be an integer, not {other}")
        n = exponent.value
        if self.value is not None:
            return const(Fraction(self.value) ** n)
        if n < 0:
            return _ops.divide(ONE, self ** -n)
        result, base = ONE, self
        while n:
            if n & 1:
                result = result * base
            base, n = base * base, n >> 1
        return result

    def __rpow__(self, other: Any) -> "Dim":
        o = coerce(other)
        return NotImplemented if o is None else o ** self

    def _difference(self, other: Any) -> "Dim":
        o = coerce(other)
        if o is None:
            raise TypeError(f"cannot compare the dimension {self} with {other!r}")
        return self - o

    def __lt__(self, other: Any) -> bool:
        return _ops.decide(self._difference(other), strict=True, negative=True)

    def __le__(self, other: Any) -> bool:
        return _ops.decide(self._difference(other), strict=False, negative=True)

    def __gt__(self, other: Any) -> bool:
        return _ops.decide(self._difference(other), strict=True, negative=False)

    def __ge__(self, other: Any) -> bool:
        return _ops.decide(self._difference(other), strict=False, negative=False)

    def __abs__(self) -> "Dim":
        return self if self >= 0 else -self

    def subs(self, mapping: dict) -> "Dim":
        """The dimension with symbols replaced (`mapping`: symbol Dim -> Dim or int)."""
        if self.value is not None or not mapping:
            return self
        if self._name is not None:
            found = mapping.get(self)
            return self if found is None else dim(found)
        if self.symbols.isdisjoint(mapping):
            return self
        kept: dict[Monomial, Coeff] = {}
        changed: list[Dim] = []
        for m, c in self.terms:
            if all(a.kind == "sym" and symbol(a.name) not in mapping for a, _ in m):
                kept[m] = c
                continue
            term: Dim = const(c)
            for a, e in m:
                value = _atom_subs(a, mapping)
                term = term * (value if e == 1 else value ** e)
            changed.append(term)
        total = from_terms(kept)
        for term in changed:
            total = total + term
        return total


# ---------------------------------------------------------------------- construction
_SMALL: dict[Coeff, Dim] = {}


def normalized(c: Coeff) -> Coeff:
    return c.numerator if type(c) is Fraction and c.denominator == 1 else c


def const(value: Coeff) -> Dim:
    if type(value) is not int:
        value = normalized(value)
    found = _SMALL.get(value)
    if found is not None:
        return found
    d = Dim(((((), value),)) if value else ())
    if type(value) is int and -1024 <= value <= 1 << 16:
        _SMALL[value] = d
    return d


ZERO, ONE = const(0), const(1)
_SYMBOLS: dict[str, Dim] = {}


def symbol(name: str) -> Dim:
    """The positive-integer symbol `name` (one object per name)."""
    found = _SYMBOLS.get(name)
    if found is None:
        atom = Atom("sym", name)
        found = _SYMBOLS[name] = Dim(((((atom, 1),), 1),))
        found._name = name
        found._symbols = frozenset((found,))
    return found


def coerce(value: Any) -> Dim | None:
    """A Dim for an int, Fraction, finite float or Dim; None for anything else."""
    if type(value) is Dim:
        return value
    if type(value) is int:
        return const(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, Fraction)):
        return const(value)
    if isinstance(value, float) and math.isfinite(value):
        return const(Fraction(value))
    return None


def dim(value: Any) -> Dim:
    """`value` as a Dim; TypeError when it is not a number or a dimension."""
    if type(value) is Dim:
        return value
    d = coerce(value)
    if d is None:
        raise TypeError(f"{value!r} is not a dimension")
    return d


def _rebuild(terms: tuple) -> Dim:
    """Unpickling: the same canonical form, with constants and symbols interned again."""
    return from_terms(dict(terms))


def from_terms(terms: dict[Monomial, Coeff]) -> Dim:
    kept = [(m, normalized(c)) for m, c in terms.items() if c]
    if not kept:
        return ZERO
    if len(kept) == 1 and not kept[0][0]:
        return const(kept[0][1])
    if len(kept) == 1 and kept[0][1] == 1 and len(kept[0][0]) == 1 and kept[0][0][0][1] == 1 \
            and kept[0][0][0][0].kind == "sym":
        return symbol(kept[0][0][0][0].name)          # one object per symbol
    kept.sort(key=lambda t: _mono_key(t[0]))
    return Dim(tuple(kept))


def atom_power(atom: Atom, exponent: int = 1) -> Dim:
    return symbol(atom.name) if atom.kind == "sym" and exponent == 1 else Dim(((((atom, exponent),), 1),))



def _mono_mul(a: Monomial, b: Monomial) -> Monomial:
    if not a or not b:
        return a or b
    exps = dict(a)
    for atom, e in b:
        exps[atom] = exps.get(atom, 0) + e
    return tuple(sorted(((x, e) for x, e in exps.items() if e), key=lambda t: t[0].key))


def integer_monomial(m: Monomial) -> bool:
    return all(e > 0 and a.integer for a, e in m)


def _atom_subs(a: Atom, mapping: dict) -> Dim:
    if a.kind == "sym":
        s = symbol(a.name)
        return dim(mapping.get(s, s))
    args = [x.subs(mapping) for x in a.args]
    if a.kind == "floor":
        return _ops.floor(args[0])
    if a.kind == "recip":
        return _ops.divide(ONE, args[0])
    return _ops.minimum(*args) if a.kind == "min" else _ops.maximum(*args)


# The operations live in dim_ops.py (they need Dim, and Dim's operators need them); importing
# it last, once Dim exists, makes both directions work and re-exports them from here.
from compiler.ir import dim_ops as _ops  # noqa: E402
from compiler.ir.dim_ops import ceil, divide, floor, maximum, minimum, prod_dims  # noqa: E402,F401
