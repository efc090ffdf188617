"""Element-wise arithmetic, matmul and softmax.  `a + b`, `a * b`, `a @ b` in a
spec lower to these ops; a tensor times a compile-time number is `Scale`.  A mismatch
between two operands names no slot, so the diagnostic notes where both came from."""
from __future__ import annotations

from compiler.diagnostics.codes import DTYPE_MISMATCH
from compiler.ir.types import TensorType, broadcast, dim_str, dims_equal, is_float, is_int
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
    half,
)

_SYMBOLS = {"Add": "+", "Sub": "-", "Mul": "*", "Div": "/"}
_METHODS = {"Add": "add_", "Sub": "sub_", "Mul": "mul_", "Div": "div_"}
_COMMUTATIVE = ("Add", "Mul")


def _lower_binary(name: str, a: InplaceAttrs, ctx) -> list[str]:
    if a.inplace:
        return assign(ctx, f"{ctx.args[0]}.{_METHODS[name]}({ctx.args[1]})")
    return assign(ctx, f"{ctx.args[0]} {_SYMBOLS[name]} {ctx.args[1]}")


def promote(x: TensorType, y_dtype: str, op: str, what: str) -> str:
    """The result dtype of `x op y` for a y of dtype `y_dtype` ("float"/"int64" for a number),
    as torch promotes: float wins over int, the wider float over the narrower, and `/` of
    integers is float.  Boolean tensors (masks) take no arithmetic."""
    for dtype in (x.dtype, y_dtype):
        if not (is_float(dtype) or is_int(dtype)):
            raise ShapeError(f"{what}: `{op}` on a {dtype} tensor", None, code=DTYPE_MISMATCH,
                             hint="masks take no arithmetic; use them in Attention or a comparison")
    if is_float(x.dtype) and is_float(y_dtype):
        if "float" in (x.dtype, y_dtype):     # the model's float dtype, whatever it is: the named one says more
            return y_dtype if x.dtype == "float" else x.dtype
        return y_dtype if _FLOAT_WIDTH[y_dtype] > _FLOAT_WIDTH[x.dtype] else x.dtype
    if is_float(x.dtype) or is_float(y_dtype):
        return x.dtype if is_float(x.dtype) else y_dtype
    if op == "/":
        return "float"
    return "int32" if x.dtype == y_dtype == "int32" else "int64"


_FLOAT_WIDTH = {"float16": 16, "bfloat16": 16, "float32": 32, "float64": 64}


def _infer_binary(name: str):
    def infer(a, ins):
        x, y = need(ins[0], 0, f"{name}'s left operand"), need(ins[1], 1, f"{name}'s right operand")
        dtype = promote(x, y.dtype, _SYMBOLS[name], name)
        shape = broadcast(x.shape, y.shape)
        if shape is None:
            raise ShapeError(f"shapes {x.shape_str()} and {y.shape_str()} do not broadcast in {name}", None,
                             hint="dimensions must be equal or 1, aligned from the right")
        return [TensorType(shape, dtype)]
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
    # The factor is a float, so an integer tensor gives a float one, as in torch.
    return [TensorType(x.shape, promote(x, "float", "*", "Scale"))]


register(OpDef(
    "Scale", ScaleAttrs, (Port("x"),), _infer_scale,
    lambda a, ctx: assign(ctx, f"{ctx.args[0]} * {a.factor!r}"),
    doc="Multiply by a compile-time constant (what `x * 0.5` and `x / 8` become); integer tensors give float ones.",
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
        hint = (f"both operands end in {dim_str(x.shape[-1])}: transpose the right one first, "
                f"`Transpose({y.rank - 2}, {y.rank - 1})`" if dims_equal(x.shape[-1], y.shape[-1]) else None)
        raise ShapeError(f"MatMul inner dimensions differ: {dim_str(x.shape[-1])} vs {dim_str(y.shape[-2])} "
                         f"in {x.shape_str()} @ {y.shape_str()}", None, hint=hint)
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
    macs=half(_matmul_flops),
    samples=(sample(tensor(2, 3, 4), tensor(2, 4, 5)), sample(tensor(2, 2, 3, 4), tensor(4, 6))),
))


class SoftmaxAttrs(Attrs):
    dim: int = -1


def _infer_softmax(a, ins):
    x = need(ins[0], 0, "Softmax input")
    need_float(x, 0, "Softmax input")
    if not -x.rank <= a.dim < x.rank:
        raise ShapeError(f"Softmax dim {a.dim} is out of range for {x.shape_str()}", 0,
                         hint=f"dimensions run from {-x.rank} to {x.rank - 1}; the last one is -1")
    return [x]


register(OpDef(
    "Softmax", SoftmaxAttrs, (Port("x"),), _infer_softmax,
    lambda a, ctx: assign(ctx, f"F.softmax({ctx.args[0]}, dim={a.dim})"),
    doc="Normalised exponentials along one dimension.",
    # exp, sum, divide per element, and the max taken first for stability
    flops=per_output_element(5),
    samples=(sample(tensor(2, 3, 4)), sample(tensor(2, 3, 4), dim=1)),
))
