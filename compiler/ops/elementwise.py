"""Element-wise arithmetic, matmul and softmax.  `a + b`, `a * b`, `a @ b` in a
spec lower to these ops; a tensor times a compile-time number is `Scale`.  A mismatch
between two operands names no slot, so the diagnostic notes where both came from."""
from __future__ import annotations

from compiler.ir.types import TensorType, broadcast, dim_str, dims_equal, is_float
from compiler.ops.registry import (
    Attrs,
    InplaceAttrs,
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

_SYMBOLS = {"Add": "+", "Sub": "-", "Mul": "*", "Div": "/"}
_METHODS = {"Add": "add_", "Sub": "sub_", "Mul": "mul_", "Div": "div_"}
_COMMUTATIVE = ("Add", "Mul")


def _lower_binary(name: str, a: InplaceAttrs, ctx) -> list[str]:
    if a.inplace:
        return assign(ctx, f"{ctx.args[0]}.{_METHODS[name]}({ctx.args[1]})")
    return assign(ctx, f"{ctx.args[0]} {_SYMBOLS[name]} {ctx.args[1]}")


def _infer_binary(name: str):
    def infer(a, ins):
        x, y = need(ins[0], 0, f"{name}'s left operand"), need(ins[1], 1, f"{name}'s right operand")
        if x.dtype != y.dtype and not (is_float(x.dtype) and is_float(y.dtype)):
            raise ShapeError(f"{name} of {x.dtype} and {y.dtype} tensors", None, code="DLC008")
        shape = broadcast(x.shape, y.shape)
        if shape is None:
            raise ShapeError(f"shapes {x.shape_str()} and {y.shape_str()} do not broadcast in {name}", None,
                             hint="dimensions must be equal or 1, aligned from the right")
        return [TensorType(shape, x.dtype)]
    return infer


for _name, _sym in _SYMBOLS.items():
    register(OpDef(
        _name, InplaceAttrs, (Port("a"), Port("b")), _infer_binary(_name),
        lambda a, ctx, _name=_name: _lower_binary(_name, a, ctx),
        doc=f"Element-wise a {_sym} b with broadcasting.",
        overwritable=True,
        elementwise=True, commutative=_name in _COMMUTATIVE, inplace=True, flops=per_output_element(1),
        samples=(sample(tensor(2, 3, 4), tensor(2, 3, 4)), sample(tensor(2, 3, 4), tensor(4)),
                 sample(tensor(2, 1, 4), tensor(3, 1))),
    ))


class ScaleAttrs(Attrs):
    factor: float


def _infer_scale(a, ins):
    x = need(ins[0], 0, "Scale input")
    need_float(x, 0, "Scale input")
    return [x]


register(OpDef(
    "Scale", ScaleAttrs, (Port("x"),), _infer_scale,
    lambda a, ctx: assign(ctx, f"{ctx.args[0]} * {a.factor!r}"),
    doc="Multiply by a compile-time constant.",
    overwritable=True,
    identity=lambda a, ins, outs: a.factor == 1.0,
    elementwise=True, flops=per_output_element(1),
    samples=(sample(tensor(2, 3, 4), factor=0.125), sample(tensor(2, 3, 4), factor=1.0)),
    identity_attrs=("factor",),
))


def _infer_matmul(a, ins):
    x, y = need(ins[0], 0, "MatMul's left operand"), need(ins[1], 1, "MatMul's right operand")
    need_float(x, 0, "MatMul's left operand")
    need_float(y, 1, "MatMul's right operand")
    if x.rank < 2 or y.rank < 2:
        raise ShapeError(f"MatMul needs operands of rank >= 2, got {x.shape_str()} @ {y.shape_str()}", 0)
    if not dims_equal(x.shape[-1], y.shape[-2]):
        raise ShapeError(f"MatMul inner dimensions differ: {dim_str(x.shape[-1])} vs {dim_str(y.shape[-2])} "
                         f"in {x.shape_str()} @ {y.shape_str()}", None)
    batch = broadcast(x.shape[:-2], y.shape[:-2])
    if batch is None:
        raise ShapeError(f"MatMul batch dimensions {x.shape_str()} and {y.shape_str()} do not broadcast", None)
    return [TensorType((*batch, x.shape[-2], y.shape[-1]), x.dtype)]


def _matmul_flops(a, ins, outs):
    # Each result element is a dot product over the inner dimension: k multiply-adds.
    return 2 * numel(outs[0]) * ins[0].shape[-1]


register(OpDef(
    "MatMul", NoAttrs, (Port("a"), Port("b")), _infer_matmul,
    lambda a, ctx: assign(ctx, f"{ctx.args[0]} @ {ctx.args[1]}"),
    doc="Batched matrix product a @ b.",
    overwritable=True,
    flops=_matmul_flops,
    samples=(sample(tensor(2, 3, 4), tensor(2, 4, 5)), sample(tensor(2, 2, 3, 4), tensor(4, 6))),
))


class SoftmaxAttrs(Attrs):
    dim: int = -1


def _infer_softmax(a, ins):
    x = need(ins[0], 0, "Softmax input")
    need_float(x, 0, "Softmax input")
    if not -x.rank <= a.dim < x.rank:
        raise ShapeError(f"Softmax dim {a.dim} is out of range for {x.shape_str()}", 0)
    return [x]


register(OpDef(
    "Softmax", SoftmaxAttrs, (Port("x"),), _infer_softmax,
    lambda a, ctx: assign(ctx, f"F.softmax({ctx.args[0]}, dim={a.dim})"),
    doc="Normalised exponentials along one dimension.",
    # exp, sum, divide per element, and the max taken first for stability
    flops=per_output_element(5),
    samples=(sample(tensor(2, 3, 4)), sample(tensor(2, 3, 4), dim=1)),
))
