"""Stochastic depth (Huang et al., "Deep Networks with Stochastic Depth", 2016): in
training, a residual branch is dropped with probability p, for each sample ("row") or
for the whole batch ("batch"), and the survivors are scaled by 1 / (1 - p); in eval mode
it is the identity.  The semantics of torchvision.ops.stochastic_depth, which
EfficientNet, ConvNeXt, Swin and ViT training recipes use.
"""
from __future__ import annotations

from typing import Literal

from compiler.ops.schema import confloat

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


class StochasticDepthAttrs(Attrs):
    p: confloat(ge=0.0, le=1.0)  # type: ignore[valid-type]
    mode: Literal["row", "batch"] = "row"


def _infer_stochastic_depth(a: StochasticDepthAttrs, ins):
    x = need(ins[0], 0, "StochasticDepth input")
    need_float(x, 0, "StochasticDepth input")
    if a.mode == "row" and x.rank < 1:
        raise ShapeError("StochasticDepth in row mode needs a batch dimension", 0)
    return [x]


register(OpDef(
    "StochasticDepth", StochasticDepthAttrs, (Port("x"),), _infer_stochastic_depth,
    lambda a, ctx: assign(ctx, f"stochastic_depth({ctx.args[0]}, {a.p!r}, {a.mode!r}, self.training)"),
    doc="Drop the whole input (a residual branch) with probability p in training, per sample (mode='row') "
        "or per batch (mode='batch'), scaling survivors by 1/(1-p); identity in eval mode.",
    helpers=("stochastic_depth",),
    pure=False,
    training_only=("p",),                       # an inference build sets p to 0 ...
    identity=lambda a, ins, outs: a.p == 0.0,   # ... and then it computes nothing
    flops=per_output_element(1),
    samples=(sample(tensor(4, 3, 2, 2), p=0.2), sample(tensor(4, 3), p=0.5, mode="batch"),
             sample(tensor(4, 3), p=0.0)),
))
