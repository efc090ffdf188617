"""Rotary position embeddings (Su et al., "RoFormer", 2021): each head's features are
rotated in pairs by angles proportional to the token's position, so that query-key dot
products depend on relative positions only.

Two conventions pair the features differently.  HuggingFace's Llama/Mistral/Qwen code
"rotates half": feature i pairs with i + head_dim/2.  GPT-J and the original RoFormer
interleave: feature 2i pairs with 2i + 1.  A checkpoint trained with one is wrong
under the other, so `interleaved` must match the reference.
"""
from __future__ import annotations

from compiler.ops.schema import PositiveFloat, PositiveInt

from compiler.diagnostics.codes import DTYPE_MISMATCH
from compiler.ir.residual import is_residual
from compiler.ir.types import dims_equal, is_int
from compiler.ops.registry import (
    Attrs,
    OpDef,
    Port,
    ShapeError,
    assign,
    need,
    need_float,
    per_output_element,
    register,
    sample,
    tensor,
)


class RotaryAttrs(Attrs):
    heads: PositiveInt
    theta: PositiveFloat = 10000.0      # rope_theta: the base of the frequencies
    interleaved: bool = False           # GPT-J pairing (2i, 2i+1) instead of rotate-half (i, i + d/2)
    scaling: PositiveFloat = 1.0        # linear position interpolation: positions / scaling
    rotary_dim: PositiveInt | None = None   # rotate only the first rotary_dim features of each head


def _infer_rotary(a: RotaryAttrs, ins):
    x = need(ins[0], 0, "Rotary input")
    need_float(x, 0, "Rotary input")
    if x.rank != 3:
        raise ShapeError(f"Rotary input must be [B, T, heads * head_dim], got {x.shape_str()}", 0)
    features = x.shape[2]
    if features.is_int:
        if int(features) % a.heads or (int(features) // a.heads) % 2:
            raise ShapeError(f"Rotary input features {features} must be heads={a.heads} times an even head size", 0)
        head_dim = int(features) // a.heads
        if a.rotary_dim is not None and (a.rotary_dim > head_dim or a.rotary_dim % 2):
            raise ShapeError(f"Rotary rotary_dim={a.rotary_dim} must be even and at most the head size {head_dim}", 0)
    positions = ins[1] if len(ins) > 1 else None
    if positions is not None:
        if not is_int(positions.dtype):
            raise ShapeError(f"Rotary positions must be integer (int64), got {positions.dtype}", 1, code=DTYPE_MISMATCH)
        if positions.rank != 2 or not dims_equal(positions.shape[1], x.shape[1]):
            raise ShapeError(f"Rotary positions must be [B, T] for an input {x.shape_str()}, "
                             f"got {positions.shape_str()}", 1)
    return [x]


def _lower_rotary(a: RotaryAttrs, ctx) -> list[str]:
    # The head size where the spec writes the width, so a layer sharded over heads (tensor
    # parallelism) rotates each of its heads right; else the head count, fixed.
    width = ctx.feature(0)
    args = [ctx.args[0], f"head_dim={width // a.heads}" if is_residual(width) and is_residual(a.heads) else str(a.heads)]
    if a.theta != 10000.0:
        args.append(f"theta={a.theta!r}")
    if a.interleaved:
        args.append("interleaved=True")
    if a.scaling != 1.0:
        args.append(f"scaling={a.scaling!r}")
    if a.rotary_dim is not None:
        args.append(f"rotary_dim={a.rotary_dim}")
    given = ctx.args[1] if len(ctx.args) > 1 else None
    if ctx.positions:      # incremental decoding: positions after the cached ones (or each row's own)
        args.append(f"positions={given} if {given} is not None else {ctx.positions(ctx.args[0])}" if given
                    else f"positions={ctx.positions(ctx.args[0])}")
    elif given is not None:
        args.append(f"positions={given}")
    return assign(ctx, f"apply_rotary({', '.join(args)})")


register(OpDef(
    "Rotary", RotaryAttrs, (Port("x"), Port("positions", optional=True)), _infer_rotary, _lower_rotary,
    doc="Rotary position embedding of x [B, T, heads * head_dim], applied to queries and keys before "
        "Attention: rotate-half (HF Llama) or interleaved (GPT-J) pairing, base `theta` (rope_theta), "
        "linear `scaling`, partial `rotary_dim`; positions [B, T] default to 0..T-1.",
    helpers=("apply_rotary",),
    # Two multiplies and an add per rotated element (the angles are per position, not per element).
    flops=per_output_element(3),
    samples=(sample(tensor(2, 5, 16), heads=2), sample(tensor(2, 5, 16), tensor(2, 5, dtype="int64"), heads=4,
                                                      theta=500000.0),
             sample(tensor(1, 6, 24), heads=3, interleaved=True, scaling=2.0),
             sample(tensor(2, 4, 16), heads=2, rotary_dim=4)),
))
