"""Linear layers and embeddings."""
from __future__ import annotations

from compiler.ops.schema import PositiveInt

from compiler.ir.dims import ZERO, prod_dims
from compiler.ir.types import TensorType, dim, dim_str
from compiler.ops.hints import concrete, set_argument
from compiler.ir.residual import equal_in_every_configuration
from compiler.ops.registry import (
    Attrs,
    OpDef,
    Port,
    ShapeError,
    assign,
    need,
    need_dim,
    need_float,
    need_int,
    no_flops,
    numel,
    per_output_element,
    register,
    sample,
    tensor,
    half,
)


class LinearAttrs(Attrs):
    in_features: PositiveInt
    out_features: PositiveInt
    bias: bool = True


def _infer_linear(a: LinearAttrs, ins):
    x = need(ins[0], 0, "Linear input")
    need_float(x, 0, "Linear input")
    if x.rank < 1:
        raise ShapeError("Linear input must have at least one dimension", 0)
    need_dim(x.shape[-1], dim(a.in_features), 0, "the last dimension of Linear's input", x,
             hint=lambda: _linear_hint(a, x))
    return [x.with_shape((*x.shape[:-1], a.out_features))]


def _linear_hint(a: LinearAttrs, x: TensorType) -> str:
    """The likeliest fix for a Linear whose in_features does not match its input."""
    actual = concrete(x.shape[-1])
    features = concrete(prod_dims(x.shape[1:])) if x.rank >= 3 else None
    if features == a.in_features:
        return f"flatten it first: `Flatten(1)` makes it [{dim_str(x.shape[0])}, {features}]"
    if actual == a.out_features and a.in_features != a.out_features:
        return (f"the arguments look swapped: `Linear({a.out_features}, {a.in_features})` "
                f"(in_features first, then out_features)")
    return set_argument("in_features", x.shape[-1], call=f"Linear({actual}, {a.out_features})" if actual else None)


def _linear_flops(a, ins, outs):
    # in_features multiply-adds per result element; the bias add is not counted, as torch's
    # flop counter does not count it either.
    return sum((2 * numel(t) * ins[0].shape[-1] for t in outs), ZERO)


def _linear_params(a: LinearAttrs):
    shapes = {"weight": (a.out_features, a.in_features)}
    if a.bias:
        shapes["bias"] = (a.out_features,)
    return shapes


register(OpDef(
    "Linear", LinearAttrs, (Port("x"),), _infer_linear,
    lambda a, ctx: assign(ctx, f"{ctx.module}({ctx.args[0]})"),
    doc="y = x W^T + b over the last dimension.",
    init=lambda a: f"nn.Linear({a.in_features}, {a.out_features}, bias={a.bias})",
    params=_linear_params,
    overwritable=True,
    flops=_linear_flops,
    macs=half(_linear_flops),
    samples=(sample(tensor(2, 3, 8), in_features=8, out_features=5), sample(tensor(4, 8), in_features=8, out_features=6, bias=False)),
))


class EmbeddingAttrs(Attrs):
    num_embeddings: PositiveInt
    embedding_dim: PositiveInt
    padding_idx: int | None = None


def _infer_embedding(a: EmbeddingAttrs, ins):
    ids = need(ins[0], 0, "Embedding input")
    need_int(ids, 0, "Embedding input")
    return [TensorType((*ids.shape, dim(a.embedding_dim)), "float")]


def _embedding_init(a: EmbeddingAttrs) -> str:
    pad = f", padding_idx={a.padding_idx}" if a.padding_idx is not None else ""
    return f"nn.Embedding({a.num_embeddings}, {a.embedding_dim}{pad})"


register(OpDef(
    "Embedding", EmbeddingAttrs, (Port("ids"),), _infer_embedding,
    lambda a, ctx: assign(ctx, f"{ctx.module}({ctx.args[0]})"),
    doc="Look up rows of a [num_embeddings, embedding_dim] table by integer id.",
    init=_embedding_init,
    params=lambda a: {"weight": (a.num_embeddings, a.embedding_dim)},
    overwritable=True,
    flops=no_flops,
    samples=(sample(tensor(2, 5, dtype="int64"), num_embeddings=11, embedding_dim=8), sample(tensor(2, 5, dtype="int64"), num_embeddings=11, embedding_dim=4,
                    padding_idx=0)),
))


class PositionAttrs(Attrs):
    max_len: PositiveInt
    dim: PositiveInt


def _infer_positions(a: PositionAttrs, ins):
    x = need(ins[0], 0, "PositionEmbedding input")
    if x.rank < 2:
        raise ShapeError(f"PositionEmbedding input must be [B, S, ...], got {x.shape_str()}", 0)
    return [TensorType((x.shape[1], dim(a.dim)), "float")]


def _lower_positions(a: PositionAttrs, ctx) -> list[str]:
    x = ctx.args[0]
    if not ctx.positions:
        return assign(ctx, f"{ctx.module}(torch.arange({x}.shape[1], device={x}.device))")
    # incremental decoding: the positions after the cached ones, each row's own in a left-padded batch
    return assign(ctx, f"{ctx.module}({ctx.positions(x)})")


register(OpDef(
    "PositionEmbedding", PositionAttrs, (Port("x"),), _infer_positions,
    _lower_positions,
    doc="Learned absolute positions: the embeddings of 0..S-1 for an input [B, S, ...]; "
        "returns [S, dim], which broadcasts when added to [B, S, dim].",
    init=lambda a: f"nn.Embedding({a.max_len}, {a.dim})",
    params=lambda a: {"weight": (a.max_len, a.dim)},
    flops=no_flops,
    samples=(sample(tensor(2, 5, dtype="int64"), max_len=16, dim=8), sample(tensor(2, 5, 8), max_len=5, dim=4)),
))


def _infer_sinusoid(a: PositionAttrs, ins):
    x = need(ins[0], 0, "SinusoidalPositions input")
    need_float(x, 0, "SinusoidalPositions input")
    if x.rank != 3:
        raise ShapeError(f"SinusoidalPositions input must be [B, S, dim], got {x.shape_str()}", 0)
    need_dim(x.shape[2], dim(a.dim), 0, "the last dimension of SinusoidalPositions' input", x, argument="dim")
    return [x]


register(OpDef(
    "SinusoidalPositions", PositionAttrs, (Port("x"),), _infer_sinusoid,
    lambda a, ctx: assign(ctx, f"{ctx.module}({ctx.args[0]}"
                          + (f", {ctx.past})" if ctx.past else ")")),
    doc="Adds the fixed sine/cosine position table of 'Attention Is All You Need' to x [B, S, dim]. "
        "The table is a non-persistent buffer, so it never appears in a checkpoint.",
    init=lambda a: f"SinusoidalPositions({a.max_len}, {a.dim})",
    helpers=("SinusoidalPositions",),
    flops=per_output_element(1),
    samples=(sample(tensor(2, 5, 8), max_len=16, dim=8),),
    buffers=lambda a: {"table": ((a.max_len, a.dim), False)},     # non-persistent: not in checkpoints
))


def _infer_conv1d_linear(a: LinearAttrs, ins):
    return _infer_linear(a, ins)


register(OpDef(
    "TransposedLinear", LinearAttrs, (Port("x"),), _infer_conv1d_linear,
    lambda a, ctx: assign(ctx, f"{ctx.module}({ctx.args[0]})"),
    doc="A linear map whose reference checkpoints store the weight [in_features, out_features] (GPT-2's "
        "Conv1D layout).  It is an nn.Linear (so torch's tensor-parallel styles and kernels take it); "
        "load_reference_state_dict transposes the weight as it loads.",
    init=lambda a: f"nn.Linear({a.in_features}, {a.out_features}, bias={a.bias})",
    params=_linear_params,
    reference_transposed=("weight",),
    overwritable=True,
    flops=_linear_flops,
    macs=half(_linear_flops),
    samples=(sample(tensor(2, 3, 8), in_features=8, out_features=5),
             sample(tensor(2, 8), in_features=8, out_features=5, bias=False)),
))


class FusedLinearAttrs(Attrs):
    in_features: PositiveInt
    out_sizes: tuple[PositiveInt, ...]
    bias: bool = True
    sources: tuple[str, ...] = ()       # the separate layers whose weights this one concatenates


def _infer_fused_linear(a: FusedLinearAttrs, ins):
    x = need(ins[0], 0, "FusedLinear input")
    need_float(x, 0, "FusedLinear input")
    need_dim(x.shape[-1], dim(a.in_features), 0, "the last dimension of FusedLinear's input", x,
             argument="in_features")
    return [x.with_shape((*x.shape[:-1], n)) for n in a.out_sizes]


def _lower_fused_linear(a: FusedLinearAttrs, ctx):
    if equal_in_every_configuration(a.out_sizes):   # equal pieces: relative sizes, right for a sharded layer too
        return [f"{', '.join(ctx.outs)} = {ctx.module}({ctx.args[0]}).chunk({len(a.out_sizes)}, dim=-1)"]
    sizes = ", ".join(map(str, a.out_sizes))
    return [f"{', '.join(ctx.outs)} = {ctx.module}({ctx.args[0]}).split([{sizes}], dim=-1)"]


register(OpDef(
    "FusedLinear", FusedLinearAttrs, (Port("x"),), _infer_fused_linear, _lower_fused_linear,
    doc="Several Linear layers reading one input, computed as one matmul and split. "
        "Made by the fuse-projections pass; loads checkpoints of the separate layers.",
    init=lambda a: f"nn.Linear({a.in_features}, {sum(a.out_sizes)}, bias={a.bias})",
    params=lambda a: {"weight": (sum(a.out_sizes), a.in_features), **({"bias": (sum(a.out_sizes),)} if a.bias else {})},
    num_outputs=lambda a: len(a.out_sizes),
    joins=lambda a: a.sources,
    flops=_linear_flops,
    macs=half(_linear_flops),
    samples=(sample(tensor(2, 3, 8), in_features=8, out_sizes=(8, 4, 4)),
             sample(tensor(2, 8), in_features=8, out_sizes=(3, 5), bias=False, sources=("a", "b"))),
))
