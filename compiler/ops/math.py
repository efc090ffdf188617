"""Arithmetic with numbers, the remaining tensor-tensor operators, unary math functions
and sums.

`x + 3`, `1 - x`, `x ** 2` in a spec lower to `ScalarArith`; `x // y`, `x % y`, `x ** y`
between tensors to `FloorDiv`, `Mod`, `Pow`.  Types promote as torch promotes them: an
integer tensor with a float number, or divided (`/`) by anything, gives a float tensor.
Boolean tensors take no arithmetic: they are masks, and a mask added to a number is
nearly always a mistake (convert it with a comparison's result first).
"""
from __future__ import annotations

from typing import Literal

from compiler.ir.types import TensorType, broadcast, is_float, is_int
from compiler.ops.elementwise import promote
from compiler.ops.registry import (
    Attrs,
    NoAttrs,
    OpDef,
    Port,
    ShapeError,
    assign,
    need,
    need_float,
    numel,
    per_output_element,
    register,
    sample,
    tensor,
)
from compiler.ops.tensor import dims_literal, reduce_shape
from compiler.diagnostics.codes import DIVISION_BY_ZERO


# ------------------------------------------------------------------ tensor op number
ScalarOperator = Literal["+", "-", "*", "/", "//", "%", "**"]


class ScalarArithAttrs(Attrs):
    op: ScalarOperator
    value: int | float
    reverse: bool = False       # number op tensor (`1 - x`, `1 / x`)


def _infer_scalar(a: ScalarArithAttrs, ins):
    x = need(ins[0], 0, "ScalarArith input")
    if a.value == 0 and not a.reverse and a.op in ("/", "//", "%"):
        raise ShapeError(f"`x {a.op} 0` divides by zero", 0, code=DIVISION_BY_ZERO)
    # A number takes the tensor's dtype where its kind allows (torch: int32 % 2 is int32, float16 + 0.5 float16).
    if isinstance(a.value, float):
        number = x.dtype if is_float(x.dtype) else "float"
    else:
        number = x.dtype if is_int(x.dtype) or is_float(x.dtype) else "int64"
    return [TensorType(x.shape, promote(x, number, a.op, "ScalarArith"))]


def _lower_scalar(a: ScalarArithAttrs, ctx) -> list[str]:
    number = repr(a.value)
    if a.reverse:
        return assign(ctx, f"{number} {a.op} {ctx.args[0]}")
    return assign(ctx, f"{ctx.args[0]} {a.op} {number}")


register(OpDef(
    "ScalarArith", ScalarArithAttrs, (Port("x"),), _infer_scalar, _lower_scalar,
    doc="x op value, or value op x with reverse=true, for a compile-time number: what `x + 3`, "
        "`1 - x`, `x ** 2` and `6 / x` in a spec become.  Integer tensors promote to float with a "
        "float number and under `/`.",
    elementwise=True, flops=per_output_element(1),
    samples=(sample(tensor(2, 3, 4), op="+", value=3), sample(tensor(2, 3, 4), op="-", value=1, reverse=True),
             sample(tensor(2, 3, 4), op="/", value=6.0, reverse=True), sample(tensor(2, 3), op="**", value=2),
             sample(tensor(2, 3, dtype="int64"), op="//", value=2), sample(tensor(2, 3, dtype="int64"), op="+", value=0.5),
             sample(tensor(2, 3, dtype="int64"), op="/", value=2)),
))


# ------------------------------------------------------------------ tensor op tensor
_BINARY = {"FloorDiv": "//", "Mod": "%", "Pow": "**"}


def _infer_binary(name: str, symbol: str):
    def infer(a, ins):
        x, y = need(ins[0], 0, f"{name}'s left operand"), need(ins[1], 1, f"{name}'s right operand")
        dtype = promote(x, y.dtype, symbol, name)
        shape = broadcast(x.shape, y.shape)
        if shape is None:
            raise ShapeError(f"shapes {x.shape_str()} and {y.shape_str()} do not broadcast in {name}", None,
                             hint="dimensions must be equal or 1, aligned from the right")
        return [TensorType(shape, dtype)]
    return infer


for _name, _symbol in _BINARY.items():
    register(OpDef(
        _name, NoAttrs, (Port("a"), Port("b")), _infer_binary(_name, _symbol),
        lambda a, ctx, _symbol=_symbol: assign(ctx, f"{ctx.args[0]} {_symbol} {ctx.args[1]}"),
        doc=f"Element-wise a {_symbol} b with broadcasting and torch's type promotion.",
        elementwise=True, flops=per_output_element(1),
        samples=(sample(tensor(2, 3, 4), tensor(2, 3, 4)), sample(tensor(2, 3, 4), tensor(4)),
                 sample(tensor(2, 3, dtype="int64"), tensor(2, 3))),       # int with float: float
    ))


# ------------------------------------------------------------------ unary functions
# name -> (lowering, accepts integer tensors, doc).  Exp, Sqrt, Rsqrt and Reciprocal save
# their result for the backward pass, so a later in-place op must never overwrite it.
_SAVES_RESULT = {"Exp", "Sqrt", "Rsqrt", "Reciprocal"}
_UNARY = {
    "Neg": ("-{x}", True, "negation, -x (what `-x` on a tensor becomes)"),
    "Abs": ("{x}.abs()", True, "absolute value |x|, element-wise"),
    "Sin": ("torch.sin({x})", False, "sine, element-wise"),
    "Cos": ("torch.cos({x})", False, "cosine, element-wise"),
    "Exp": ("torch.exp({x})", False, "exponential e ** x, element-wise"),
    "Log": ("torch.log({x})", False, "natural logarithm, element-wise"),
    "Sqrt": ("torch.sqrt({x})", False, "square root, element-wise"),
    "Rsqrt": ("torch.rsqrt({x})", False, "reciprocal square root 1 / sqrt(x), element-wise (RMSNorm by hand)"),
    "Reciprocal": ("torch.reciprocal({x})", False, "reciprocal 1 / x, element-wise"),
    "Erf": ("torch.erf({x})", False, "the Gauss error function erf(x), element-wise"),
}


def _infer_unary(name: str, ints: bool):
    def infer(a, ins):
        x = need(ins[0], 0, f"{name} input")
        if ints and is_int(x.dtype):
            return [x]
        need_float(x, 0, f"{name} input")
        return [x]
    return infer


for _name, (_expr, _ints, _doc) in _UNARY.items():
    register(OpDef(
        _name, NoAttrs, (Port("x"),), _infer_unary(_name, _ints),
        lambda a, ctx, _expr=_expr: assign(ctx, _expr.format(x=ctx.args[0])),
        doc=_doc[0].upper() + _doc[1:] + ".",
        overwritable=_name not in _SAVES_RESULT,
        elementwise=True, flops=per_output_element(1),
        samples=(sample(tensor(2, 3, 4)),) + ((sample(tensor(2, 3, dtype="int64")),) if _ints else ()),
    ))


class SoftplusAttrs(Attrs):
    beta: float = 1.0
    threshold: float = 20.0


def _lower_softplus(a: SoftplusAttrs, ctx) -> list[str]:
    extra = "" if (a.beta, a.threshold) == (1.0, 20.0) else f", beta={a.beta!r}, threshold={a.threshold!r}"
    return assign(ctx, f"F.softplus({ctx.args[0]}{extra})")


register(OpDef(
    "Softplus", SoftplusAttrs, (Port("x"),), _infer_unary("Softplus", False), _lower_softplus,
    doc="log(1 + exp(beta * x)) / beta, linear above `threshold` (as torch.nn.Softplus).",
    overwritable=True,
    elementwise=True, flops=per_output_element(4),
    samples=(sample(tensor(2, 3, 4)), sample(tensor(2, 3, 4), beta=2.0, threshold=5.0)),
))


# ------------------------------------------------------------------ sums
class SumAttrs(Attrs):
    dim: int | tuple[int, ...]
    keepdim: bool = False


def _infer_sum(a: SumAttrs, ins):
    x = need(ins[0], 0, "Sum input")
    if x.dtype == "bool":
        return [TensorType(reduce_shape(x, a.dim, a.keepdim, "Sum"), "int64")]
    return [TensorType(reduce_shape(x, a.dim, a.keepdim, "Sum"), x.dtype)]


register(OpDef(
    "Sum", SumAttrs, (Port("x"),), _infer_sum,
    lambda a, ctx: assign(ctx, f"{ctx.args[0]}.sum(dim={dims_literal(a.dim)}, keepdim={a.keepdim})"),
    doc="Sum over one dimension or a list of them; a bool tensor counts its True elements (int64).",
    flops=lambda a, ins, outs: numel(ins[0]),       # one add per input element
    samples=(sample(tensor(2, 3, 4), dim=1), sample(tensor(2, 3, 4), dim=(0, 2), keepdim=True),
             sample(tensor(2, 5, dtype="bool"), dim=-1)),
))
