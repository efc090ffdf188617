"""Losses usable as spec outputs: a head declares `in labels: [B] int64 optional` and
`out loss = CrossEntropy()(logits, labels)`, and the generated model returns the loss
when labels are given (None otherwise), with HuggingFace's conventions, so a trainer
that passes `labels` can drive it."""
from __future__ import annotations

from compiler.ir.types import TensorType, dim_str, dims_equal
from compiler.ops.registry import (
    Attrs,
    NoAttrs,
    OpDef,
    Port,
    ShapeError,
    assign,
    need,
    need_float,
    need_int,
    numel,
    register,
    sample,
    tensor,
)


class CrossEntropyAttrs(Attrs):
    ignore_index: int = -100
    shift: bool = False          # causal LM: logits at t predict labels at t + 1


def _infer_cross_entropy(a: CrossEntropyAttrs, ins):
    logits = need(ins[0], 0, "CrossEntropy logits")
    need_float(logits, 0, "CrossEntropy logits")
    labels = need(ins[1], 1, "CrossEntropy labels")
    need_int(labels, 1, "CrossEntropy labels")
    if logits.rank != labels.rank + 1 or not all(dims_equal(x, y) for x, y in zip(logits.shape, labels.shape)):
        raise ShapeError(f"CrossEntropy labels must be the logits' shape without the class dimension: logits "
                         f"{logits.shape_str()} need labels [{', '.join(dim_str(d) for d in logits.shape[:-1])}], "
                         f"got {labels.shape_str()}", 1)
    if a.shift and logits.rank < 3:
        raise ShapeError(f"CrossEntropy(shift=true) is for [B, T, vocab] logits, got {logits.shape_str()}", 0)
    return [TensorType((), logits.dtype, labels.optional or logits.optional)]


def _lower_cross_entropy(a: CrossEntropyAttrs, ctx):
    logits, labels = ctx.args
    if a.shift:
        logits, labels = f"{logits}[..., :-1, :]", f"{labels}[..., 1:]"
    ignore = f", ignore_index={a.ignore_index}" if a.ignore_index != -100 else ""
    loss = f"F.cross_entropy({logits}.flatten(0, -2), {labels}.flatten(){ignore})"
    if ctx.in_types[1] is not None and ctx.in_types[1].optional:
        return assign(ctx, f"None if {ctx.args[1]} is None else {loss}")
    return assign(ctx, loss)


register(OpDef(
    "CrossEntropy", CrossEntropyAttrs, (Port("logits"), Port("labels", optional=True)), _infer_cross_entropy, _lower_cross_entropy,
    doc="Mean cross-entropy of logits [..., classes] against int64 labels [...]; labels equal to ignore_index "
        "(-100, HF's convention) do not count; shift=true scores position t against label t + 1 (causal LMs). "
        "With optional labels the loss is None when they are not given.",
    # log-softmax (about 5 per logit) and the mean: the vocabulary-sized part dominates
    flops=lambda a, ins, outs: 5 * numel(ins[0]),
    samples=(sample(tensor(6, 5), tensor(6, dtype="int64")),
             sample(tensor(2, 4, 5), tensor(2, 4, dtype="int64"), shift=True, ignore_index=0)),
))


def _infer_negative_sampling(a: NoAttrs, ins):
    center = need(ins[0], 0, "NegativeSamplingLoss center vectors")
    context = need(ins[1], 1, "NegativeSamplingLoss context vectors")
    negatives = need(ins[2], 2, "NegativeSamplingLoss negative vectors")
    for slot, t in enumerate((center, context, negatives)):
        need_float(t, slot, "NegativeSamplingLoss input")
    if center.rank != 2 or context.shape != center.shape:
        raise ShapeError(f"center and context vectors must both be [B, d], got {center.shape_str()} and "
                         f"{context.shape_str()}", 1)
    if negatives.rank != 3 or not (dims_equal(negatives.shape[0], center.shape[0])
                                   and dims_equal(negatives.shape[2], center.shape[1])):
        raise ShapeError(f"negative vectors must be [B, K, d] = [{dim_str(center.shape[0])}, K, "
                         f"{dim_str(center.shape[1])}], got {negatives.shape_str()}", 2)
    return [TensorType((), center.dtype)]


def _lower_negative_sampling(a: NoAttrs, ctx):
    center, context, negatives = ctx.args
    positive = f"F.logsigmoid(({center} * {context}).sum(-1))"
    negative = f"F.logsigmoid(-({negatives} @ {center}.unsqueeze(-1)).squeeze(-1)).sum(-1)"
    return assign(ctx, f"-({positive} + {negative}).mean()")


def _negative_sampling_flops(a, ins, outs):
    # K + 1 dot products of length d per example (2 FLOPs per multiply-add), then a log-sigmoid
    # (about 4) and a sum for each of the K + 1 scores.
    center, negatives = ins[0], ins[2]
    scores = center.shape[0] * (negatives.shape[1] + 1)
    return 2 * scores * center.shape[1] + 5 * scores


register(OpDef(
    "NegativeSamplingLoss", NoAttrs, (Port("center"), Port("context"), Port("negatives")),
    _infer_negative_sampling, _lower_negative_sampling,
    doc="word2vec's negative-sampling objective (Mikolov et al. 2013): for center vectors [B, d], their true "
        "context vectors [B, d] and K sampled noise vectors [B, K, d], "
        "-mean(log σ(c·o) + Σ_k log σ(-c·n_k)).",
    flops=_negative_sampling_flops,
    samples=(sample(tensor(3, 8), tensor(3, 8), tensor(3, 5, 8)),),
))
