"""Compile-time values that flow through resolution.

Parameters and `let`s are plain Python values (int, float, bool, str, list);
dimensions are `Dim`s (ir/dims.py); tensors are `TensorRef`s to a node output;
`Layer` is an op or block instance that has been configured but not applied.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


from compiler.ir.dims import Dim
from compiler.diagnostics import Span
from compiler.diagnostics.records import record


@record
class TensorRef:
    node: str
    index: int


@record
class ArgExpr:
    """One argument of a layer's configuration as the spec wrote it, beside the value it had.
    Checking uses the value; codegen prints the expression, in the block's parameters."""

    name: str | None          # the keyword, or None for a positional argument
    expr: Any                 # a syntax.ast.Expr
    value: Any


@record
class CallExpr:
    """How a layer was configured, in source form: `callee(args)`; for an op, the arguments
    matched to its attribute fields; for a `repeat`, its count and index variable."""

    callee: Any                                   # a syntax.ast.Expr (a name, or a `let` holding a block)
    args: tuple[ArgExpr, ...]
    fields: tuple[tuple[str, ArgExpr], ...] = ()
    count: Any = None
    index: str | None = None

    def field_exprs(self) -> dict[str, ArgExpr]:
        return dict(self.fields)


def set_by_parameters(call: CallExpr | None, field: str) -> bool:
    """Whether an attribute was computed from the block's parameters rather than written as a
    constant.  Passes leave such values alone: the generated class serves other values too."""
    from compiler.syntax.ast import is_literal
    arg = call.field_exprs().get(field) if call is not None else None
    return arg is not None and not is_literal(arg.expr)


@record
class Layer:
    """`Linear(512, 512)`: an op or a block specialization, not yet applied.

    kind "op": `target` is the op name and `attrs` its validated attributes.
    kind "block": `target` is the graph key of the block specialization.
    kind "repeat": `attrs` is a tuple of the per-iteration layers.
    """

    kind: str
    target: str
    attrs: Any
    span: Span
    name: str | None = None       # set when bound by `name = Layer(...)`
    call: CallExpr | None = None  # the configuration as written, for codegen
    guard: tuple = ()             # the static branches it was configured in (applied later, it is still theirs)


@dataclass(frozen=True)
class ScanSpec:
    """How a `scan` steps its block: over `axis` of its first input, backwards if `reverse`.
    The step's outputs after its first are carried into its inputs 1..carries."""

    axis: int
    reverse: bool
    carries: int


@record
class Callee:
    """A name that can be configured: a primitive op or a block definition."""

    kind: str       # "op" | "block" | "builtin"
    name: str


def kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        return "list"
    if value is None:
        return "none"
    if isinstance(value, Dim):
        return "dimension"
    if isinstance(value, TensorRef):
        return "tensor"
    if isinstance(value, Layer):
        return "layer"
    if isinstance(value, tuple):
        return "tuple of tensors"
    if isinstance(value, Callee):
        return value.kind
    return "value"


def show(value: Any) -> str:
    """A value as the user would write it in a spec."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if value is None:
        return "none"
    # compiler objects are described, never shown as reprs (`TensorRef(node='n2', index=0)`)
    if isinstance(value, TensorRef):
        return "a tensor"
    if isinstance(value, Layer):
        return f"the layer {value.name or value.target}"
    if isinstance(value, Callee):
        return f"the {value.kind} `{value.name}`"
    if isinstance(value, tuple):
        return f"{len(value)} tensors"
    return str(value)
