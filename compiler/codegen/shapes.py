"""Shape comments in the block's parameter names: `# [B, T, d_model]`,
`# [B, 4 * channels, (H - 1) // stride + 1, (W - 1) // stride + 1]`.

A specialization knows its dimensions as numbers and symbols.  A number that is the
value of exactly one parameter or `let` (or a small multiple of one) is written as
that name; a number no name explains stays a number, and merging drops a comment
that differs between the specializations of one class (merge.py).
"""
from __future__ import annotations

from typing import Any

from compiler.ir.dim_print import Style, render
from compiler.ir.dims import dim
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
    style = Style(mul=" * ", floordiv=" // ", number=lambda n: names.get(n, str(n)))
    return "[" + ", ".join(render(dim(d), style) for d in t.shape) + "]"
