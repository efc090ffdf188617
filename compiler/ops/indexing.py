"""Ops that turn scores back into ids and pick tensor entries by runtime indices:
what decoding steps and per-example positions (GPT-1's [EXTRACT] token, HF's
`cls_index`, the last real token of a padded batch) need."""
from __future__ import annotations

from typing import Literal

from compiler.ops.schema import PositiveInt

from compiler.ir.dims import ONE
from compiler.ir.types import FLOAT_DTYPES, INT_DTYPES, TensorType, broadcast, dim, dim_str, dims_equal, normalize_axis
from compiler.ops.registry import (
    Attrs,
    NoAttrs,
    OpDef,
    Port,
    ShapeError,
    assign,
    need,
    need_int,
    no_flops,
    numel,
    per_output_element,
    register,
    sample,
    tensor,
)
from compiler.diagnostics.codes import DTYPE_MISMATCH


def _one_per_input_element(a, ins, outs):
    return numel(ins[0])       # a comparison per input element


def _axis(d: int, t: TensorType, slot: int, what: str) -> int:
    axis = normalize_axis(d, t.rank)
    if axis is None:
        raise ShapeError(f"{what} {d} is out of range for a rank-{t.rank} tensor {t.shape_str()}", slot)
    return axis


def _without(t: TensorType, axis: int, keepdim: bool = False) -> tuple:
    return tuple(ONE if i == axis and keepdim else d for i, d in enumerate(t.shape)
                 if i != axis or keepdim)


class ArgmaxAttrs(Attrs):
    dim: int = -1
    keepdim: bool = False


def _infer_argmax(a: ArgmaxAttrs, ins):
    x = need(ins[0], 0, "Argmax input")
    axis = _axis(a.dim, x, 0, "Argmax dim")
    return [TensorType(_without(x, axis, a.keepdim), "int64", x.optional)]


register(OpDef(
    "Argmax", ArgmaxAttrs, (Port("x"),), _infer_argmax,
    lambda a, ctx: assign(ctx, f"{ctx.args[0]}.argmax(dim={a.dim}" + (", keepdim=True)" if a.keepdim else ")")),
    doc="The index of the largest entry along `dim` (int64): greedy decoding's next token.",
    flops=_one_per_input_element,
    samples=(sample(tensor(2, 3, 7)), sample(tensor(2, 3, 7), dim=1, keepdim=True)),
))


class TopKAttrs(Attrs):
    k: PositiveInt
    dim: int = -1
    largest: bool = True


def _infer_topk(a: TopKAttrs, ins):
    x = need(ins[0], 0, "TopK input")
    axis = _axis(a.dim, x, 0, "TopK dim")
    size = x.shape[axis]
    if size.is_int and a.k > int(size):
        raise ShapeError(f"TopK k={a.k} is larger than dim {a.dim} of size {size}", 0,
                         hint=f"k can be at most {size}")
    shape = tuple(dim(a.k) if i == axis else d for i, d in enumerate(x.shape))
    return [x.with_shape(shape), TensorType(shape, "int64", x.optional)]


def _lower_topk(a: TopKAttrs, ctx):
    largest = "" if a.largest else ", largest=False"
    return [f"{ctx.outs[0]}, {ctx.outs[1]} = {ctx.args[0]}.topk({a.k}, dim={a.dim}{largest})"]


register(OpDef(
    "TopK", TopKAttrs, (Port("x"),), _infer_topk, _lower_topk,
    doc="The k largest (or smallest) entries along `dim` and their int64 indices, largest first.",
    num_outputs=lambda a: 2,
    flops=_one_per_input_element,
    samples=(sample(tensor(2, 3, 7), k=2), sample(tensor(2, 5, 3), k=5, dim=1, largest=False)),
))


class SelectAtAttrs(Attrs):
    dim: int = 1


def _infer_select_at(a: SelectAtAttrs, ins):
    x = need(ins[0], 0, "SelectAt input")
    index = need(ins[1], 1, "SelectAt index")
    need_int(index, 1, "SelectAt index")
    axis = _axis(a.dim, x, 0, "SelectAt dim")
    if axis == 0:
        raise ShapeError("SelectAt picks one position per example: dim 0 is the batch", 0,
                         hint="use a dim after the batch, e.g. SelectAt(1) for [B, T, ...]")
    if index.rank != 1 or not dims_equal(index.shape[0], x.shape[0]):
        raise ShapeError(f"SelectAt index must be [{dim_str(x.shape[0])}] (one position per example), "
                         f"got {index.shape_str()}", 1)
    return [x.with_shape(_without(x, axis))]


def _lower_select_at(a: SelectAtAttrs, ctx):
    x, index = ctx.args
    rank = ctx.in_types[0].rank
    view = ", ".join(["-1"] + ["1"] * (rank - 1))
    return assign(ctx, f"{x}.take_along_dim({index}.view({view}), dim={a.dim}).squeeze({a.dim})")


register(OpDef(
    "SelectAt", SelectAtAttrs, (Port("x"), Port("index")), _infer_select_at, _lower_select_at,
    doc="x [B, T, ...] and index [B] int64: for each example b, x[b, index[b]] along `dim` (default 1), "
        "e.g. the hidden state at each sequence's [EXTRACT] or last real token.",
    flops=no_flops,
    samples=(sample(tensor(2, 5, 8), tensor(2, dtype="int64")), sample(tensor(2, 8, 5), tensor(2, dtype="int64"), dim=2)),
))


class GatherAttrs(Attrs):
    dim: int


def _infer_gather(a: GatherAttrs, ins):
    x = need(ins[0], 0, "Gather input")
    index = need(ins[1], 1, "Gather index")
    need_int(index, 1, "Gather index")
    _axis(a.dim, x, 0, "Gather dim")
    if index.rank != x.rank:
        raise ShapeError(f"Gather index must have the input's rank {x.rank}, got {index.shape_str()}", 1)
    return [x.with_shape(index.shape)]


register(OpDef(
    "Gather", GatherAttrs, (Port("x"), Port("index")), _infer_gather,
    lambda a, ctx: assign(ctx, f"{ctx.args[0]}.gather({a.dim}, {ctx.args[1]})"),
    doc="torch.gather: out[i][j] = x[i][index[i][j]] along `dim`; index has the input's rank.",
    flops=no_flops,
    samples=(sample(tensor(2, 7), tensor(2, 3, dtype="int64"), dim=1), sample(tensor(5, 4), tensor(2, 4, dtype="int64"), dim=0)),
))


def _infer_where(a: NoAttrs, ins):
    cond = need(ins[0], 0, "Where condition")
    x, y = need(ins[1], 1, "Where's first value"), need(ins[2], 2, "Where's second value")
    if cond.dtype != "bool":
        raise ShapeError(f"Where's condition must be bool, got {cond.dtype}", 0, code=DTYPE_MISMATCH,
                         hint="compare first, e.g. Compare(\"ne\", 0)(ids), or Cast(\"bool\")")
    if x.dtype != y.dtype:
        raise ShapeError(f"Where's values differ in dtype: {x.dtype} and {y.dtype}", 2, code=DTYPE_MISMATCH,
                         hint="Cast one of them")
    shape = broadcast(x.shape, y.shape)
    shape = broadcast(cond.shape, shape) if shape is not None else None
    if shape is None:
        raise ShapeError(f"Where's shapes do not broadcast: {cond.shape_str()}, {x.shape_str()}, {y.shape_str()}", 2)
    return [TensorType(shape, x.dtype)]


register(OpDef(
    "Where", NoAttrs, (Port("condition"), Port("x"), Port("y")), _infer_where,
    lambda a, ctx: assign(ctx, f"torch.where({', '.join(ctx.args)})"),
    doc="x where condition is True, else y (broadcasting).",
    elementwise=True, flops=no_flops,
    samples=(sample(tensor(2, 5, dtype="bool"), tensor(2, 5), tensor(2, 5)),
             sample(tensor(2, 1, dtype="bool"), tensor(2, 5, dtype="int64"), tensor(5, dtype="int64"))),
))

DType = Literal["bool", "int64", "int32", "float", "float32", "float16", "bfloat16", "float64"]


class CastAttrs(Attrs):
    dtype: DType


def _infer_cast(a: CastAttrs, ins):
    x = need(ins[0], 0, "Cast input")
    return [TensorType(x.shape, a.dtype, x.optional)]


def _lower_cast(a: CastAttrs, ctx):
    x = ctx.args[0]
    if a.dtype == "float":   # the floating type of the model, not a fixed one: stays dtype-agnostic
        return assign(ctx, f"{x}.to(torch.get_default_dtype())")
    return assign(ctx, f"{x}.to(torch.{a.dtype})")


register(OpDef(
    "Cast", CastAttrs, (Port("x"),), _infer_cast, _lower_cast,
    doc="Convert to another dtype: " + ", ".join(DType.__args__) + " (`float` is torch's default float type).",
    elementwise=True, flops=no_flops,
    samples=(sample(tensor(2, 5, dtype="int64"), dtype="float"), sample(tensor(2, 5), dtype="bool"),
             sample(tensor(2, 5, dtype="bool"), dtype="int64")),
))

_COMPARISONS = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


class CompareAttrs(Attrs):
    op: Literal["eq", "ne", "lt", "le", "gt", "ge"]
    value: int | float


def _infer_compare(a: CompareAttrs, ins):
    x = need(ins[0], 0, "Compare input")
    if isinstance(a.value, float) and x.dtype in INT_DTYPES and not a.value.is_integer():
        raise ShapeError(f"Compare of integer ids with {a.value!r} is never exact", 0, code=DTYPE_MISMATCH)
    if x.dtype not in (*FLOAT_DTYPES, *INT_DTYPES, "bool"):
        raise ShapeError(f"Compare input has unsupported dtype {x.dtype}", 0, code=DTYPE_MISMATCH)
    return [TensorType(x.shape, "bool", x.optional)]


register(OpDef(
    "Compare", CompareAttrs, (Port("x"),), _infer_compare,
    lambda a, ctx: assign(ctx, f"{ctx.args[0]} {_COMPARISONS[a.op]} {a.value!r}"),
    doc="Element-wise comparison with a number, giving a bool tensor: "
        + ", ".join(f"{k} ({v})" for k, v in _COMPARISONS.items()) + ", e.g. Compare(\"eq\", eos)(ids).",
    elementwise=True, flops=per_output_element(1),
    samples=(sample(tensor(2, 5, dtype="int64"), op="eq", value=2), sample(tensor(2, 5), op="ge", value=0.5)),
))
