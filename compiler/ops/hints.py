"""Fix hints that compute: the value an argument should have, the divisors near a
choice that does not divide, the dimension a concat or split should run along.
Shape rules call these so a mismatch says what to write, not only what is wrong."""
from __future__ import annotations

from typing import Any, Sequence


from compiler.ir.types import Dim, dim_str, dims_equal


def concrete(d: Any) -> int | None:
    """The integer value of a dimension, or None while it is symbolic."""
    if isinstance(d, int) and not isinstance(d, bool):
        return d
    if isinstance(d, Dim) and d.is_int:
        return int(d)
    return None


def divisors_near(n: int, near: int, count: int = 3) -> list[int]:
    """The `count` divisors of `n` closest to `near` (ties: the smaller first)."""
    divisors = [d for d in range(1, n + 1) if n % d == 0]
    return sorted(divisors, key=lambda d: (abs(d - near), d))[:count]


def choices(name: str, values: Sequence[int]) -> str:
    """`heads=8, heads=12 or heads=6`."""
    items = [f"`{name}={v}`" for v in values]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def set_argument(argument: str, actual: Dim, call: str | None = None) -> str:
    """`set in_features=147` (or `in_features must match S` while the size is symbolic)."""
    value = concrete(actual)
    if value is None:
        return f"`{argument}` must match the input's {dim_str(actual)}"
    return f"set `{argument}={value}`" + (f": `{call}`" if call else "")


def differing_dims(a: Sequence[Dim], b: Sequence[Dim]) -> list[int]:
    return [i for i, (x, y) in enumerate(zip(a, b)) if not dims_equal(x, y)]


def negative_index(i: int, rank: int) -> int:
    """Dimension `i` spelled from the end when it is the last one (`dim=-1`), as specs usually do."""
    return -1 if i == rank - 1 else i
