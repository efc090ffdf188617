"""Shape manipulation: reshape, transpose, permute, flatten, concat, split,
and reductions."""
from __future__ import annotations

from functools import reduce
from operator import mul
from typing import Any

from compiler.ops.schema import field_validator

from compiler.ir.dims import ONE, ZERO, Dim
from compiler.ir.types import TensorType, dim, dim_str, dims_equal, is_star, normalize_axis
from compiler.ir.residual import equal_in_every_configuration, is_residual
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
from compiler.diagnostics.codes import DTYPE_MISMATCH
from compiler.ops.hints import concrete, differing_dims, negative_index


def _axis(d: int, t: TensorType, slot: int, what: str) -> int:
    axis = normalize_axis(d, t.rank)
    if axis is None:
        raise ShapeError(f"{what} {d} is out of range for a rank-{t.rank} tensor {t.shape_str()}", slot,
                         hint=f"dimensions run from {-t.rank} to {t.rank - 1}; the last one is -1")
    return axis


class ReshapeAttrs(Attrs):
    shape: tuple[Any, ...]

    @field_validator("shape", mode="before")
    @classmethod
    def _dims(cls, value):
        if not isinstance(value, (list, tuple)) or not value:
            raise ValueError("expected a non-empty list of dimensions")
        for d in value:
            if isinstance(d, bool) or not isinstance(d, (int, Dim)):
                raise ValueError(f"dimension {d!r} is not an integer or a symbol")
            if isinstance(d, int) and (d == 0 or d < -1):
                raise ValueError(f"dimension {d} must be positive, or -1 for 'the rest'")
        if sum(1 for d in value if d == -1) > 1:
            raise ValueError("at most one dimension may be -1")
        return tuple(value)


def _no_star(shape, what: str) -> None:
    """`*` stands for any number of dimensions, which no one size in a new shape can be."""
    for d in shape:
        if isinstance(d, Dim) and any(is_star(s) for s in d.symbols):
            raise ShapeError(f"{what} cannot name the leading dimensions `{d}`", 0,
                             hint="keep them with -1 (Expand) or reshape only the trailing dimensions (Unflatten/Flatten)")


def _infer_reshape(a: ReshapeAttrs, ins):
    x = need(ins[0], 0, "Reshape input")
    _no_star(a.shape, "Reshape")
    total = reduce(mul, x.shape, ONE)
    known = reduce(mul, (dim(d) for d in a.shape if d != -1), ONE)
    if -1 in a.shape:
        rest = total / known
        if not (rest.is_integer or rest.is_int):
            raise ShapeError(f"cannot reshape {x.shape_str()} to {_fmt(a.shape)}: {dim_str(total)} elements "
                             f"are not a multiple of {dim_str(known)}", 0)
        shape = tuple(rest if d == -1 else dim(d) for d in a.shape)
    else:
        if not dims_equal(total, known):
            raise ShapeError(f"cannot reshape {x.shape_str()} ({dim_str(total)} elements) to "
                             f"{_fmt(a.shape)} ({dim_str(known)} elements)", 0, hint=_reshape_hint(a.shape, total))
        shape = tuple(dim(d) for d in a.shape)
    return [x.with_shape(shape)]


def _reshape_hint(shape, total) -> str:
    """Recompute the last size so the element count fits, or suggest -1."""
    others = reduce(mul, (dim(d) for d in shape[:-1]), ONE)
    last = total / others
    if last.is_int and last > 0:
        return f"`Reshape({_fmt((*shape[:-1], last))})` keeps every element (or write -1 for the size to infer)"
    return "write -1 for the one size dlc should infer"


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
    allocates=False,       # a view
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
    allocates=False,       # a view
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
    allocates=False,       # a view
))


class FlattenAttrs(Attrs):
    start: int = 1
    end: int = -1


def _infer_flatten(a, ins):
    x = need(ins[0], 0, "Flatten input")
    i, j = _axis(a.start, x, 0, "Flatten start"), _axis(a.end, x, 0, "Flatten end")
    if i > j:
        raise ShapeError(f"Flatten start {a.start} comes after end {a.end} for {x.shape_str()}", 0)
    merged = reduce(mul, x.shape[i:j + 1], ONE)
    return [x.with_shape((*x.shape[:i], merged, *x.shape[j + 1:]))]


register(OpDef(
    "Flatten", FlattenAttrs, (Port("x"),), _infer_flatten,
    lambda a, ctx: assign(ctx, f"torch.flatten({ctx.args[0]}, {a.start}, {a.end})"),
    doc="Merge dimensions start..end (inclusive) into one.",
    flops=no_flops, identity=same_shape,
    samples=(sample(tensor(2, 3, 4, 5)), sample(tensor(2, 3, 4, 5), start=0, end=1), sample(tensor(2, 3, 4), start=2, end=2)),
    allocates=False,       # a view
))


class ConcatAttrs(Attrs):
    dim: int = -1


def _infer_concat(a, ins):
    xs = [need(t, i, f"Concat input {i}") for i, t in enumerate(ins)]
    first = xs[0]
    axis = _axis(a.dim, first, 0, "Concat dim")
    total = ZERO
    for i, t in enumerate(xs):
        if t.rank != first.rank or any(not dims_equal(p, q) for k, (p, q) in enumerate(zip(t.shape, first.shape)) if k != axis):
            differ = differing_dims(first.shape, t.shape) if t.rank == first.rank else []
            hint = (f"they differ only in dim {differ[0]}: concatenate along it with "
                    f"`dim={negative_index(differ[0], t.rank)}`" if len(differ) == 1 else None)
            raise ShapeError(f"Concat inputs must agree outside dim {a.dim}: {first.shape_str()} vs {t.shape_str()}", i,
                             hint=hint)
        if t.dtype != first.dtype:
            raise ShapeError(f"Concat of {first.dtype} and {t.dtype} tensors", i, code=DTYPE_MISMATCH)
        total = total + t.shape[axis]
    shape = list(first.shape)
    shape[axis] = total
    return [first.with_shape(shape)]


register(OpDef(
    "Concat", ConcatAttrs, (Port("xs", variadic=True),), _infer_concat,
    lambda a, ctx: assign(ctx, f"torch.cat([{', '.join(ctx.args)}], dim={a.dim})"),
    doc="Join tensors along one dimension.",
    flops=no_flops,
    fresh=True,           # torch.cat copies, even a single tensor
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
                         f"{x.shape_str()} is {dim_str(x.shape[axis])}", 0, hint=_split_hint(a, x, axis))
    outs = []
    for s in a.sizes:
        shape = list(x.shape)
        shape[axis] = dim(s)
        outs.append(x.with_shape(shape))
    return outs


def _split_hint(a: SplitAttrs, x: TensorType, axis: int) -> str | None:
    """Another dimension of the right size, or equal pieces of this one."""
    fits = [i for i, d in enumerate(x.shape) if i != axis and dims_equal(d, dim(sum(a.sizes)))]
    if fits:
        return f"dim {fits[0]} has that size: `dim={negative_index(fits[0], x.rank)}`"
    size = concrete(x.shape[axis])
    if size is not None and size % len(a.sizes) == 0:
        return f"{len(a.sizes)} equal pieces of {size} are `{[size // len(a.sizes)] * len(a.sizes)}`"
    return None


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
    allocates=False,       # a view
))


class ReduceAttrs(Attrs):
    dim: int | tuple[int, ...]
    keepdim: bool = False


def reduce_shape(x: TensorType, dims: int | tuple[int, ...], keepdim: bool, name: str) -> tuple:
    """The shape left after reducing `dims` (one or several, negative allowed) of x."""
    listed = (dims,) if isinstance(dims, int) else dims
    if not listed:
        raise ShapeError(f"{name} needs at least one dim", 0)
    axes = [_axis(d, x, 0, f"{name} dim") for d in listed]
    if len(set(axes)) != len(axes):
        raise ShapeError(f"{name} dims {list(listed)} name one dimension twice", 0)
    if keepdim:
        return tuple(ONE if i in axes else d for i, d in enumerate(x.shape))
    return tuple(d for i, d in enumerate(x.shape) if i not in axes)


def _infer_reduce(name: str):
    def infer(a, ins):
        x = need(ins[0], 0, f"{name} input")
        return [x.with_shape(reduce_shape(x, a.dim, a.keepdim, name))]
    return infer


def dims_literal(dims: int | tuple[int, ...]) -> str:
    return str(dims) if isinstance(dims, int) else "(" + ", ".join(map(str, dims)) + ("," if len(dims) == 1 else "") + ")"


def _reduce_flops(a, ins, outs):
    return numel(ins[0])      # one add (or comparison) per input element


register(OpDef(
    "Mean", ReduceAttrs, (Port("x"),), _infer_reduce("Mean"),
    lambda a, ctx: assign(ctx, f"{ctx.args[0]}.mean(dim={dims_literal(a.dim)}, keepdim={a.keepdim})"),
    doc="Average over one dimension or a list of them.",
    flops=_reduce_flops,
    samples=(sample(tensor(2, 3, 4), dim=1), sample(tensor(2, 3, 4), dim=-1, keepdim=True),
             sample(tensor(2, 3, 4, 5), dim=(2, 3))),
))
register(OpDef(
    "Max", ReduceAttrs, (Port("x"),), _infer_reduce("Max"),
    lambda a, ctx: assign(ctx, f"{ctx.args[0]}.amax(dim={dims_literal(a.dim)}, keepdim={a.keepdim})"),
    doc="Maximum over one dimension or a list of them (values only).",
    flops=_reduce_flops,
    samples=(sample(tensor(2, 3, 4), dim=0), sample(tensor(2, 3, 4), dim=2, keepdim=True),
             sample(tensor(2, 3, 4), dim=(0, -1))),
))


class SelectAttrs(Attrs):
    dim: int
    index: int


def _infer_select(a, ins):
    x = need(ins[0], 0, "Select input")
    axis = _axis(a.dim, x, 0, "Select dim")
    size = x.shape[axis]
    if size.is_int and not -int(size) <= a.index < int(size):
        raise ShapeError(f"Select index {a.index} is out of range for dim {a.dim} of size {size}", 0)
    return [x.with_shape([d for i, d in enumerate(x.shape) if i != axis])]


register(OpDef(
    "Select", SelectAttrs, (Port("x"),), _infer_select,
    lambda a, ctx: assign(ctx, f"{ctx.args[0]}.select({a.dim}, {a.index})"),
    doc="Take one index along a dimension, dropping it (e.g. the [CLS] token: Select(1, 0)).",
    flops=no_flops,
    samples=(sample(tensor(2, 3, 4), dim=1, index=0), sample(tensor(2, 3, 4), dim=2, index=-1)),
    allocates=False,       # a view
))


class ExpandAttrs(ReshapeAttrs):
    """The new shape; -1 keeps a dimension, and any number of -1 are allowed."""

    @field_validator("shape", mode="before")
    @classmethod
    def _dims(cls, value):
        if not isinstance(value, (list, tuple)) or not value:
            raise ValueError("expected a non-empty list of dimensions")
        for d in value:
            if isinstance(d, bool) or not isinstance(d, (int, Dim)) or (isinstance(d, int) and d < 1 and d != -1):
                raise ValueError(f"dimension {d!r} must be a positive integer, a symbol, or -1 to keep it")
        return tuple(value)


def _infer_expand(a: ExpandAttrs, ins):
    x = need(ins[0], 0, "Expand input")
    _no_star(a.shape, "Expand")
    if len(a.shape) < x.rank:
        raise ShapeError(f"Expand to {_fmt(a.shape)} has fewer dimensions than its input {x.shape_str()}", 0)
    lead = len(a.shape) - x.rank
    shape = []
    for i, d in enumerate(a.shape):
        old = x.shape[i - lead] if i >= lead else None
        if d == -1:
            if old is None:
                raise ShapeError(f"Expand cannot keep (-1) new leading dimension {i} of {_fmt(a.shape)}", 0)
            shape.append(old)
        elif old is not None and old != 1 and not dims_equal(old, dim(d)):
            raise ShapeError(f"Expand can only stretch dimensions of size 1: dimension {i} of {x.shape_str()} "
                             f"is {dim_str(old)}, not {dim_str(dim(d))}", 0)
        else:
            shape.append(dim(d))
    return [x.with_shape(shape)]


register(OpDef(
    "Expand", ExpandAttrs, (Port("x"),), _infer_expand,
    lambda a, ctx: assign(ctx, f"{ctx.args[0]}.expand({', '.join('-1' if d == -1 else ctx.dim(dim(d)) for d in a.shape)})"),
    doc="Broadcast size-1 dimensions to the given sizes without copying (-1 keeps one), e.g. a class "
        "token [1, 1, d] to the batch: Expand([B, -1, -1]).",
    flops=no_flops, identity=same_shape,
    samples=(sample(tensor(1, 1, 8), shape=(3, -1, -1)), sample(tensor(1, 8), shape=(2, 4, 8)),
             sample(tensor(2, 8), shape=(-1, -1))),
))
