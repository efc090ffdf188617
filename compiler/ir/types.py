"""Tensor types with symbolic dimensions.

A dimension is a sympy expression: an Integer, a Symbol (`B`, `S`) or an
expression of them (`floor((H - 1)/2) + 1`).  Symbols are positive integers.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy

from compiler.diagnostics.records import fast_init

Dim = sympy.Expr

FLOAT_DTYPES = ("float", "float32", "float16", "bfloat16", "float64")
INT_DTYPES = ("int64", "int32")


@lru_cache(maxsize=None)
def symbol(name: str) -> sympy.Symbol:
    return sympy.Symbol(name, integer=True, positive=True)


def star(name: str | None = None) -> sympy.Symbol:
    """The placeholder of `*` (or `*name`) in a block input's shape: any number of leading
    dimensions, which each call site fills in (check/shapes.py)."""
    return symbol("*" + (name or ""))


def is_star(d) -> bool:
    return isinstance(d, sympy.Symbol) and d.name.startswith("*")


def has_star(shape) -> bool:
    return any(is_star(d) for d in shape)


def dim(value) -> Dim:
    return value if isinstance(value, sympy.Basic) else sympy.Integer(value)


def substitute(d, mapping: dict) -> Dim:
    """`sympify(d).xreplace(mapping)`: a bare symbol or number (most dimensions) is looked up
    directly, which is what xreplace does with an atom, without its tree walk."""
    if isinstance(d, sympy.Basic) and not d.args:
        return mapping.get(d, d)
    return sympy.sympify(d).xreplace(mapping)


@lru_cache(maxsize=100_000)
def dims_equal(a: Dim, b: Dim) -> bool:
    if a == b:
        return True
    if a.is_Integer and b.is_Integer:
        return False
    difference = a - b
    if difference.is_number:
        return difference == 0
    # A polynomial or rational function of the dimension symbols is zero exactly when its
    # canonical form p/q has p == 0, which cancel() computes cheaply; simplify() costs a
    # hundred times more (and loads much of sympy), so it is kept for floor() and the like.
    if difference.is_rational_function():
        return sympy.cancel(difference) == 0
    return sympy.simplify(difference) == 0


def dim_str(d: Dim) -> str:
    return str(d).replace("**", "^")


def is_float(dtype: str) -> bool:
    return dtype in FLOAT_DTYPES


def is_int(dtype: str) -> bool:
    return dtype in INT_DTYPES


@fast_init
@dataclass(frozen=True)
class TensorType:
    shape: tuple[Dim, ...]
    dtype: str = "float"
    optional: bool = False

    @property
    def rank(self) -> int:
        return len(self.shape)

    def with_shape(self, shape) -> "TensorType":
        return TensorType(tuple(dim(d) for d in shape), self.dtype, self.optional)

    def shape_str(self) -> str:
        return "[" + ", ".join(dim_str(d) for d in self.shape) + "]"

    def __str__(self) -> str:
        text = self.shape_str()
        if self.dtype != "float":
            text += f" {self.dtype}"
        return text + (" optional" if self.optional else "")

    def subs(self, mapping: dict) -> "TensorType":
        if not mapping:
            return self
        return TensorType(tuple(substitute(d, mapping) for d in self.shape), self.dtype, self.optional)


def shapes_equal(a: tuple[Dim, ...], b: tuple[Dim, ...]) -> bool:
    return len(a) == len(b) and all(dims_equal(x, y) for x, y in zip(a, b))


def normalize_axis(axis: int, rank: int) -> int | None:
    """Python-style negative axes; None when out of range."""
    if -rank <= axis < rank:
        return axis % rank
    return None


def broadcast(a: tuple[Dim, ...], b: tuple[Dim, ...]) -> tuple[Dim, ...] | None:
    """Numpy broadcasting of two shapes; None when they do not broadcast."""
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else sympy.Integer(1)
        y = b[-i] if i <= len(b) else sympy.Integer(1)
        if dims_equal(x, y) or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            return None
    return tuple(reversed(out))


def py_dim(d: Dim, names: dict[sympy.Symbol, str]) -> str:
    """Render a dimension as a Python integer expression over runtime names."""
    return _py(sympy.sympify(d), names)


def _py(e, names) -> str:
    if e.is_Integer:
        return str(int(e))
    if e.is_Symbol:
        return names[e]
    if isinstance(e, sympy.floor):
        num, den = sympy.fraction(sympy.together(e.args[0]))
        return f"({_py(num, names)}) // {_py(den, names)}"
    if e.is_Add:
        return " + ".join(_py(a, names) for a in e.args)
    if e.is_Mul:
        return " * ".join(f"({_py(a, names)})" if a.is_Add else _py(a, names) for a in e.args)
    raise ValueError(f"cannot render dimension {e} as Python")
