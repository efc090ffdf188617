"""Shape manipulation: reshape, transpose, permute, flatten, concat, split,
and reductions."""
from __future__ import annotations

from functools import reduce
from operator import mul
from typing import Any

import sympy
from pydantic import field_validator

from compiler.ir.residual import equal_in_every_configuration, is_residual
from compiler.ir.types import TensorType, dim, dim_str, dims_equal, normalize_axis
from compiler.ops.registry import (
    Attrs,
    OpDef,
    Port,
    ShapeError,
    assign,
    need,
    no_flops,
    numel,
    register,
    same_shape,
    sample,
    tensor,
)


def _axis(d: int, t: TensorType, slot: int, what: str) -> int:
    axis = normalize_axis(d, t.rank)
    if axis is None:
        raise ShapeError(f"{what} {d} is out of range for a rank-{t.rank} tensor {t.shape_str()}", slot)
    return axis


class ReshapeAttrs(Attrs):
    shape: tuple[Any, ...]

    @field_validator("shape", mode="before")
    @classmethod
    def _dims(cls, value):
        if not isinstance(value, (list, tuple)) or not value:
            raise ValueError("expected a non-empty list of dimensions")
        for d in value:
            if isinstance(d, bool) or not isinstance(d, (int, sympy.Expr)):
                raise ValueError(f"dimension {d!r} is not an integer or a symbol")
            if isinstance(d, int) and (d == 0 or d < -1):
                raise ValueError(f"dimension {d} must be positive, or -1 for 'the rest'")
        if sum(1 for d in value if d == -1) > 1:
            raise ValueError("at most one dimension may be -1")
        return tuple(value)


def _infer_reshape(a: ReshapeAttrs, ins):
    x = need(ins[0], 0, "Reshape input")
    total = reduce(mul, x.shape, sympy.Integer(1))
    known = reduce(mul, (dim(d) for d in a.shape if d != -1), sympy.Integer(1))
    if -1 in a.shape:
        rest = sympy.simplify(total / known)
        if not (rest.is_integer or rest.is_Integer):
            raise ShapeError(f"cannot reshape {x.shape_str()} to {_fmt(a.shape)}: {dim_str(total)} elements "
                             f"are not a multiple of {dim_str(known)}", 0)
        shape = tuple(rest if d == -1 else dim(d) for d in a.shape)
    else:
        if not dims_equal(total, known):
            raise ShapeError(f"cannot reshape {x.shape_str()} ({dim_str(total)} elements) to "
                             f"{_fmt(a.shape)} ({dim_str(known)} elements)", 0)
        shape = tuple(dim(d) for d in a.shape)
    return [x.with_shape(shape)]


def _fmt(shape) -> str:
    return "[" + ", ".join(dim_str(dim(d)) for d in shape) + "]"


def _lower_reshape(a: ReshapeAttrs, ctx):
    dims = ", ".join("-1" if d == -1 else str(d) if is_residual(d) else ctx.dim(dim(d)) for d in a.shape)
    return assign(ctx, f"{ctx.args[0]}.reshape({dims})")


register(OpDef(
    "Reshape", ReshapeAttrs, (Port("x"),), _infer_reshape, _lower_reshape,
    doc="Reshape to the given dimensions (symbols from the inputs allowed; one -1).",
    flops=no_flops, identity=same_shape,
    samples=(sample(tensor(2, 3, 4), shape=(2, 12)), sample(tensor(2, 3, 4), shape=(-1, 2, 2)),
             sample(tensor(2, 3, 4), shape=(2, 3, 4))),
))


class TransposeAttrs(Attrs):
    dim0: int
    dim1: int


def _infer_transpose(a, ins):
    x = need(ins[0], 0, "Transpose input")
    i, j = _axis(a.dim0, x, 0, "Transpose dim"), _axis(a.dim1, x, 0, "Transpose dim")
    shape = list(x.shape)
    shape[i], shape[j] = shape[j], shape[i]
    return [x.with_shape(shape)]


register(OpDef(
    "Transpose", TransposeAttrs, (Port("x"),), _infer_transpose,
    lambda a, ctx: assign(ctx, f"{ctx.args[0]}.transpose({a.dim0}, {a.dim1})"),
    doc="Swap two dimensions.",
    flops=no_flops,
    identity=lambda a, ins, outs: a.dim0 % outs[0].rank == a.dim1 % outs[0].rank,
    samples=(sample(tensor(2, 3, 4), dim0=1, dim1=2), sample(tensor(2, 3, 4), dim0=-1, dim1=0),
             sample(tensor(2, 3, 4), dim0=2, dim1=-1)),
))


class PermuteAttrs(Attrs):
    dims: tuple[int, ...]


def _infer_permute(a, ins):
    x = need(ins[0], 0, "Permute input")
    axes = [_axis(d, x, 0, "Permute dim") for d in a.dims]
    if sorted(axes) != list(range(x.rank)):
        raise ShapeError(f"Permute dims {list(a.dims)} are not a permutation of 0..{x.rank - 1}", 0)
    return [x.with_shape([x.shape[i] for i in axes])]


register(OpDef(
    "Permute", PermuteAttrs, (Port("x"),), _infer_permute,
    lambda a, ctx: assign(ctx, f"{ctx.args[0]}.permute({', '.join(map(str, a.dims))})"),
    doc="Reorder all dimensions.",
    flops=no_flops,
    identity=lambda a, ins, outs: same_shape(a, ins, outs) and list(a.dims) == sorted(a.dims),
    samples=(sample(tensor(2, 3, 4), dims=(2, 0, 1)), sample(tensor(2, 3, 4), dims=(0, 1, 2))),
))


class FlattenAttrs(Attrs):
    start: int = 1
    end: int = -1


def _infer_flatten(a, ins):
    x = need(ins[0], 0, "Flatten input")
    i, j = _axis(a.start, x, 0, "Flatten start"), _axis(a.end, x, 0, "Flatten end")
    if i > j:
        raise ShapeError(f"Flatten start {a.start} comes after end {a.end} for {x.shape_str()}", 0)
    merged = reduce(mul, x.shape[i:j + 1], sympy.Integer(1))
    return [x.with_shape((*x.shape[:i], merged, *x.shape[j + 1:]))]


register(OpDef(
    "Flatten", FlattenAttrs, (Port("x"),), _infer_flatten,
    lambda a, ctx: assign(ctx, f"torch.flatten({ctx.args[0]}, {a.start}, {a.end})"),
    doc="Merge dimensions start..end (inclusive) into one.",
    flops=no_flops, identity=same_shape,
    samples=(sample(tensor(2, 3, 4, 5)), sample(tensor(2, 3, 4, 5), start=0, end=1), sample(tensor(2, 3, 4), start=2, end=2)),
))


class ConcatAttrs(Attrs):
    dim: int = -1


def _infer_concat(a, ins):
    xs = [need(t, i, f"Concat input {i}") for i, t in enumerate(ins)]
    first = xs[0]
    axis = _axis(a.dim, first, 0, "Concat dim")
    total = sympy.Integer(0)
    for i, t in enumerate(xs):
        if t.rank != first.rank or any(not dims_equal(p, q) for k, (p, q) in enumerate(zip(t.shape, first.shape)) if k != axis):
            raise ShapeError(f"Concat inputs must agree outside dim {a.dim}: {first.shape_str()} vs {t.shape_str()}", i)
        if t.dtype != first.dtype:
            raise ShapeError(f"Concat of {first.dtype} and {t.dtype} tensors", i, code="DLC008")
        total = total + t.shape[axis]
    shape = list(first.shape)
    shape[axis] = total
    return [first.with_shape(shape)]


register(OpDef(
    "Concat", ConcatAttrs, (Port("xs", variadic=True),), _infer_concat,
    lambda a, ctx: assign(ctx, f"torch.cat([{', '.join(ctx.args)}], dim={a.dim})"),
    doc="Join tensors along one dimension.",
    flops=no_flops,
    samples=(sample(tensor(2, 3), tensor(2, 5)), sample(tensor(2, 3), tensor(4, 3), tensor(1, 3), dim=0)),
))


class SplitAttrs(Attrs):
    sizes: tuple[int, ...]
    dim: int = -1


def _infer_split(a, ins):
    x = need(ins[0], 0, "Split input")
    axis = _axis(a.dim, x, 0, "Split dim")
    if any(s <= 0 for s in a.sizes):
        raise ShapeError(f"Split sizes must be positive, got {list(a.sizes)}", 0)
    if not dims_equal(dim(sum(a.sizes)), x.shape[axis]):
        raise ShapeError(f"Split sizes {list(a.sizes)} add up to {sum(a.sizes)}, but dim {a.dim} of "
                         f"{x.shape_str()} is {dim_str(x.shape[axis])}", 0)
    outs = []
    for s in a.sizes:
        shape = list(x.shape)
        shape[axis] = dim(s)
        outs.append(x.with_shape(shape))
    return outs


def _lower_split(a, ctx):
    if equal_in_every_configuration(a.sizes):   # equal pieces: relative sizes, right for a sharded tensor too
        return [f"{', '.join(ctx.outs)} = {ctx.args[0]}.chunk({len(a.sizes)}, dim={a.dim})"]
    sizes = ", ".join(map(str, a.sizes))
    return [f"{', '.join(ctx.outs)} = torch.split({ctx.args[0]}, [{sizes}], dim={a.dim})"]


register(OpDef(
    "Split", SplitAttrs, (Port("x"),), _infer_split, _lower_split,
    doc="Cut a tensor into pieces of the given sizes along one dimension; one output per piece.",
    num_outputs=lambda a: len(a.sizes),
    flops=no_flops,
    samples=(sample(tensor(2, 7), sizes=(3, 4)), sample(tensor(6, 2), sizes=(1, 2, 3), dim=0)),
))


class ReduceAttrs(Attrs):
    dim: int
    keepdim: bool = False


def _infer_reduce(name: str):
    def infer(a, ins):
        x = need(ins[0], 0, f"{name} input")
        axis = _axis(a.dim, x, 0, f"{name} dim")
        shape = list(x.shape)
        if a.keepdim:
            shape[axis] = sympy.Integer(1)
        else:
            del shape[axis]
        return [x.with_shape(shape)]
    return infer


def _reduce_flops(a, ins, outs):
    return numel(ins[0])      # one add (or comparison) per input element


register(OpDef(
    "Mean", ReduceAttrs, (Port("x"),), _infer_reduce("Mean"),
    lambda a, ctx: assign(ctx, f"{ctx.args[0]}.mean(dim={a.dim}, keepdim={a.keepdim})"),
    doc="Average over one dimension.",
    flops=_reduce_flops,
    samples=(sample(tensor(2, 3, 4), dim=1), sample(tensor(2, 3, 4), dim=-1, keepdim=True)),
))
register(OpDef(
    "Max", ReduceAttrs, (Port("x"),), _infer_reduce("Max"),
    lambda a, ctx: assign(ctx, f"{ctx.args[0]}.amax(dim={a.dim}, keepdim={a.keepdim})"),
    doc="Maximum over one dimension (values only).",
    flops=_reduce_flops,
    samples=(sample(tensor(2, 3, 4), dim=0), sample(tensor(2, 3, 4), dim=2, keepdim=True)),
))


class SelectAttrs(Attrs):
    dim: int
    index: int


def _infer_select(a, ins):
    x = need(ins[0], 0, "Select input")
    axis = _axis(a.dim, x, 0, "Select dim")
    size = x.shape[axis]
    if size.is_Integer and not -int(size) <= a.index < int(size):
        raise ShapeError(f"Select index {a.index} is out of range for dim {a.dim} of size {size}", 0)
    return [x.with_shape([d for i, d in enumerate(x.shape) if i != axis])]


register(OpDef(
    "Select", SelectAttrs, (Port("x"),), _infer_select,
    lambda a, ctx: assign(ctx, f"{ctx.args[0]}.select({a.dim}, {a.index})"),
    doc="Take one index along a dimension, dropping it (e.g. the [CLS] token: Select(1, 0)).",
    flops=no_flops,
    samples=(sample(tensor(2, 3, 4), dim=1, index=0), sample(tensor(2, 3, 4), dim=2, index=-1)),
))
