"""Normalisation and dropout."""
from __future__ import annotations

from compiler.ops.schema import PositiveInt, confloat

from compiler.ir.types import dim, dims_equal
from compiler.ops.registry import (
    Attrs,
    OpDef,
    Port,
    ShapeError,
    assign,
    need,
    need_dim,
    need_float,
    no_flops,
    per_output_element,
    register,
    sample,
    tensor,
)


class LayerNormAttrs(Attrs):
    dim: PositiveInt
    eps: float = 1e-5
    bias: bool = True


def _infer_last_dim(name: str):
    def infer(a, ins):
        x = need(ins[0], 0, f"{name} input")
        need_float(x, 0, f"{name} input")
        if x.rank < 1:
            raise ShapeError(f"{name} input must have at least one dimension", 0)
        hint = ("a [B, C, H, W] image is normalized over channels with BatchNorm2d"
                if x.rank == 4 and dims_equal(x.shape[1], dim(a.dim)) else None)
        need_dim(x.shape[-1], dim(a.dim), 0, f"the last dimension of {name}'s input", x, argument="dim", hint=hint)
        return [x]
    return infer


register(OpDef(
    "LayerNorm", LayerNormAttrs, (Port("x"),), _infer_last_dim("LayerNorm"),
    lambda a, ctx: assign(ctx, f"{ctx.module}({ctx.args[0]})"),
    doc="Normalise the last dimension to zero mean and unit variance, then scale and shift.",
    init=lambda a: f"nn.LayerNorm({a.dim}, eps={a.eps!r}" + ("" if a.bias else ", bias=False") + ")",
    params=lambda a: {"weight": (a.dim,), **({"bias": (a.dim,)} if a.bias else {})},
    overwritable=True,
    flops=per_output_element(5),       # mean, variance, normalize, scale, shift
    samples=(sample(tensor(2, 3, 8), dim=8), sample(tensor(4, 6), dim=6, eps=1e-12, bias=False)),
))


class RMSNormAttrs(Attrs):
    dim: PositiveInt
    eps: float = 1e-6


register(OpDef(
    "RMSNorm", RMSNormAttrs, (Port("x"),), _infer_last_dim("RMSNorm"),
    lambda a, ctx: assign(ctx, f"{ctx.module}({ctx.args[0]})"),
    doc="Scale the last dimension by its reciprocal root-mean-square (no centring, no bias), as in T5.",
    init=lambda a: f"nn.RMSNorm({a.dim}, eps={a.eps!r})",
    params=lambda a: {"weight": (a.dim,)},
    overwritable=True,
    flops=per_output_element(4),       # square, mean, rescale, scale
    samples=(sample(tensor(2, 3, 8), dim=8),),
))


class BatchNormAttrs(Attrs):
    num_features: PositiveInt
    eps: float = 1e-5
    momentum: float = 0.1


def _infer_batchnorm(rank_ok: tuple[int, ...], name: str):
    def infer(a, ins):
        x = need(ins[0], 0, f"{name} input")
        need_float(x, 0, f"{name} input")
        if x.rank not in rank_ok:
            want = " or ".join(map(str, rank_ok))
            other = {2: "BatchNorm1d", 3: "BatchNorm1d", 4: "BatchNorm2d"}.get(x.rank)
            raise ShapeError(f"{name} input must have rank {want} ([B, C, ...]), got {x.shape_str()}", 0,
                             hint=f"a rank-{x.rank} input takes {other}" if other and other != name else None)
        need_dim(x.shape[1], dim(a.num_features), 0, f"the channel dimension (1) of {name}'s input", x,
                 argument="num_features")
        return [x]
    return infer


def _batchnorm_params(a: BatchNormAttrs):
    n = a.num_features
    return {"weight": (n,), "bias": (n,)}


_BATCHNORM_SAMPLES = {
    "BatchNorm1d": (sample(tensor(4, 6), num_features=6), sample(tensor(4, 6, 5), num_features=6, momentum=0.01)),
    "BatchNorm2d": (sample(tensor(2, 6, 4, 3), num_features=6, eps=1e-3),),
}


def _batchnorm_buffers(a: BatchNormAttrs):
    n = a.num_features
    return {"running_mean": ((n,), True), "running_var": ((n,), True), "num_batches_tracked": ((), True)}


for _name, _ranks in (("BatchNorm1d", (2, 3)), ("BatchNorm2d", (4,))):
    register(OpDef(
        _name, BatchNormAttrs, (Port("x"),), _infer_batchnorm(_ranks, _name),
        lambda a, ctx: assign(ctx, f"{ctx.module}({ctx.args[0]})"),
        doc=f"{_name}: normalise each channel over the batch (running statistics in eval mode).",
        init=lambda a, _name=_name: f"nn.{_name}({a.num_features}, eps={a.eps!r}, momentum={a.momentum!r})",
        params=_batchnorm_params,
        buffers=_batchnorm_buffers,
        pure=False,
        overwritable=True,
        flops=per_output_element(2),   # eval mode: one scale and one shift per element
        samples=_BATCHNORM_SAMPLES[_name],
    ))


class DropoutAttrs(Attrs):
    p: confloat(ge=0.0, lt=1.0) = 0.1  # type: ignore[valid-type]


def _infer_dropout(a, ins):
    x = need(ins[0], 0, "Dropout input")
    need_float(x, 0, "Dropout input")
    return [x]


register(OpDef(
    "Dropout", DropoutAttrs, (Port("x"),), _infer_dropout,
    lambda a, ctx: assign(ctx, f"{ctx.module}({ctx.args[0]})"),
    doc="Zero elements with probability p during training; identity in eval mode.",
    init=lambda a: f"nn.Dropout({a.p!r})",
    pure=False,
    identity=lambda a, ins, outs: a.p == 0.0,
    flops=no_flops,      # FLOPs count the inference forward, where dropout is the identity
    samples=(sample(tensor(2, 3, 8), p=0.1), sample(tensor(2, 3, 8), p=0.0)),
    allocates=False,          # eval mode: the input itself
    identity_attrs=("p",),
))
