"""Ops for language-model inputs.

`ZerosIfMissing` gives an optional input a default: BERT's `token_type_ids`
may be left out, and the reference then uses segment 0 for every token.
"""
from __future__ import annotations

from compiler.ir.types import TensorType, shapes_equal
from compiler.ops.registry import NoAttrs, OpDef, Port, ShapeError, assign, need, no_flops, register, sample, tensor


def _infer_zeros_if_missing(a: NoAttrs, ins):
    like = need(ins[1] if len(ins) > 1 else None, 1, "ZerosIfMissing's `like` input")
    x = ins[0]
    if x is not None:
        if x.dtype != like.dtype:
            raise ShapeError(f"ZerosIfMissing input is {x.dtype} but `like` is {like.dtype}; "
                             "the default zeros take the dtype of `like`", 0, code="DLC008")
        if not shapes_equal(x.shape, like.shape):
            raise ShapeError(f"ZerosIfMissing input {x.shape_str()} and `like` {like.shape_str()} differ in shape; "
                             "the default zeros take the shape of `like`", 0)
    return [TensorType(like.shape, like.dtype)]


def _lower_zeros_if_missing(a: NoAttrs, ctx) -> list[str]:
    x, like = ctx.args[0], ctx.args[1]
    if x is None:
        return assign(ctx, f"torch.zeros_like({like})")
    if ctx.in_types[0] is not None and not ctx.in_types[0].optional:
        return assign(ctx, x)
    return assign(ctx, f"{x} if {x} is not None else torch.zeros_like({like})")


register(OpDef(
    "ZerosIfMissing", NoAttrs, (Port("x", optional=True), Port("like")),
    _infer_zeros_if_missing, _lower_zeros_if_missing,
    doc="x when it is given, else zeros with the shape, dtype and device of `like` "
        "(a default for an optional input, e.g. BERT's token_type_ids).",
    flops=no_flops,
    samples=(sample(None, tensor(2, 5, dtype="int64")), sample(tensor(2, 5, dtype="int64"), tensor(2, 5, dtype="int64"))),
))
