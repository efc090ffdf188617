"""Tensor types with symbolic dimensions.

A dimension is a `Dim` (compiler/ir/dims.py): an integer, a symbol (`B`, `S`) or an
expression of them (`(H + 1)//2`), in a canonical form.  Symbols are positive integers.
"""
from __future__ import annotations


from compiler.diagnostics.records import record
from compiler.ir.dim_print import Style, render
from compiler.ir.dims import ONE, Dim, dim, symbol

FLOAT_DTYPES = ("float", "float32", "float16", "bfloat16", "float64")
INT_DTYPES = ("int64", "int32")


def star(name: str | None = None) -> Dim:
    """The placeholder of `*` (or `*name`) in a block input's shape: any number of leading
    dimensions, which each call site fills in (check/shapes.py)."""
    return symbol("*" + (name or ""))


def is_star(d) -> bool:
    return isinstance(d, Dim) and d.is_symbol and d.name.startswith("*")


def has_star(shape) -> bool:
    return any(is_star(d) for d in shape)


def substitute(d, mapping: dict) -> Dim:
    """`d` with the symbols in `mapping` replaced."""
    return dim(d).subs(mapping)


def dims_equal(a: Dim, b: Dim) -> bool:
    """Equal for every value of the symbols: with canonical forms, equal forms."""
    return a == b or dim(a) - dim(b) == 0


def dim_str(d: Dim) -> str:
    return str(d).replace("**", "^")


def is_float(dtype: str) -> bool:
    return dtype in FLOAT_DTYPES


def is_int(dtype: str) -> bool:
    return dtype in INT_DTYPES


@record
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
    if len(a) == len(b):
        for x, y in zip(a, b):
            if x is not y:
                break
        else:               # one shape twice (a residual sum): the loop below would return it
            return a
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else ONE
        y = b[-i] if i <= len(b) else ONE
        if dims_equal(x, y) or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            return None
    return tuple(reversed(out))


def py_dim(d: Dim, names: dict[Dim, str]) -> str:
    """Render a dimension as a Python integer expression over runtime names (ValueError when
    it is not an integer expression)."""
    return render(dim(d), Style(mul=" * ", floordiv=" // ", symbol=lambda name: names[symbol(name)], python=True))
