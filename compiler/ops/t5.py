"""T5's relative position bias (Raffel et al., 2020).

T5 has no absolute positions.  Instead, each attention head adds a learned
scalar to the score of query i and key j, chosen by the bucket of the offset
j - i: exact buckets for small offsets, logarithmically wider ones up to
`max_distance`, one shared bucket beyond.  Encoders see offsets in both
directions (`bidirectional`), decoders only the past.  The op returns the bias
[1, heads, Tq, Tk] for the `bias` input of `Attention`; it reads only the
lengths of its inputs.
"""
from __future__ import annotations

from compiler.ops.schema import PositiveInt

from compiler.ir.types import TensorType, dim
from compiler.ops.registry import Attrs, OpDef, Port, ShapeError, assign, need, no_flops, register, sample, tensor
from compiler.diagnostics.codes import ARGUMENT_TYPE


class RelativePositionBiasAttrs(Attrs):
    num_buckets: PositiveInt
    max_distance: PositiveInt
    heads: PositiveInt
    bidirectional: bool = True


def _check_buckets(a: RelativePositionBiasAttrs) -> None:
    # Per direction, half the buckets hold exact offsets and half grow logarithmically up to
    # max_distance: both halves need at least one bucket, and the log range must be positive.
    per_direction = a.num_buckets // 2 if a.bidirectional else a.num_buckets
    if per_direction < 2:
        raise ShapeError(f"RelativePositionBias needs at least 2 buckets per direction, got num_buckets={a.num_buckets}"
                         + (" (bidirectional: half per direction)" if a.bidirectional else ""), code=ARGUMENT_TYPE)
    if a.max_distance <= per_direction // 2:
        raise ShapeError(f"RelativePositionBias max_distance={a.max_distance} must exceed the {per_direction // 2} "
                         "exact-offset buckets", code=ARGUMENT_TYPE,
                         hint="T5 uses num_buckets=32, max_distance=128")


def _infer_relative_position_bias(a: RelativePositionBiasAttrs, ins):
    _check_buckets(a)
    q = need(ins[0], 0, "RelativePositionBias query")
    k = need(ins[1], 1, "RelativePositionBias key")
    for slot, (t, what) in enumerate(((q, "query"), (k, "key"))):
        if t.rank != 3:
            raise ShapeError(f"RelativePositionBias {what} must be [B, T, features], got {t.shape_str()}", slot)
    return [TensorType((dim(1), dim(a.heads), q.shape[1], k.shape[1]), "float")]


def _lower_relative_position_bias(a: RelativePositionBiasAttrs, ctx) -> list[str]:
    q, k = ctx.args[:2]
    past = f", {ctx.past}" if ctx.past else ""   # incremental decoding: positions after the cached ones
    return assign(ctx, f"{ctx.module}({q}.shape[1], {k}.shape[1]{past})")


def _init_relative_position_bias(a: RelativePositionBiasAttrs) -> str:
    return f"RelativePositionBias({a.num_buckets}, {a.max_distance}, {a.heads}, bidirectional={a.bidirectional})"


register(OpDef(
    "RelativePositionBias", RelativePositionBiasAttrs, (Port("query"), Port("key")),
    _infer_relative_position_bias, _lower_relative_position_bias,
    doc="T5's learned relative position bias for queries [B, Tq, D] and keys [B, Tk, D]: one scalar per "
        "(offset bucket, head), returned as [1, heads, Tq, Tk] to add to attention scores.",
    init=_init_relative_position_bias,
    params=lambda a: {"weight": (a.num_buckets, a.heads)},
    helpers=("RelativePositionBias",),
    flops=no_flops,      # a table lookup by bucket
    samples=(sample(tensor(2, 5, 8), tensor(2, 7, 8), num_buckets=8, max_distance=16, heads=2),
             sample(tensor(2, 5, 8), tensor(2, 5, 8), num_buckets=32, max_distance=128, heads=4, bidirectional=False)),
))
