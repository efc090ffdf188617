"""Printing counts: `18,432·B·S² + 85,017,600·B·S`, `1.41 G`, `109,482,240`."""
from __future__ import annotations

from compiler.ir.dim_print import Style, render
from compiler.ir.dims import Dim, dim

_SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
_COUNT = Style(mul="·", number=lambda n: f"{n:,}", power=lambda base, e: f"{base}{str(e).translate(_SUPERSCRIPTS)}")


def formula(expr: Dim) -> str:
    """A count as a readable polynomial in the free dimensions, largest power first.

    Sizes of strided convolutions hold floor() terms; those print as in diagnostics.
    """
    expr = dim(expr)
    if expr.is_int:
        return f"{int(expr):,}"
    if has_floor(expr):
        return str(expr)
    return render(expr, _COUNT)


def has_floor(expr: Dim) -> bool:
    """Whether floor/min/max terms (strided convolutions, ceil-mode pools) appear."""
    return any(a.kind != "sym" for m, _ in dim(expr).terms for a, _ in m)


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
