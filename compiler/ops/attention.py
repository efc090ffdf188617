"""Scaled dot-product attention over [B, T, heads * head_dim] tensors.

The op splits heads, computes softmax(q k^T * scale + bias, masked) v and merges
heads again.  Masks are boolean with True meaning "may attend": [B, Tk] (key
padding), [B, Tq, Tk], or [B, 1 | heads, Tq, Tk]; a model's bool inputs take int and
float 0/1 masks too (codegen/interface.py converts them on entry, once, so the lowerings
here see bool only).  `bias` is an additive float
term broadcastable to [B, heads, Tq, Tk] (T5's relative position bias).
"""
from __future__ import annotations

from compiler.ops.schema import PositiveInt, confloat

from compiler.ir.dims import ONE, Dim
from compiler.ir.residual import equal_in_every_configuration, is_residual
from compiler.ir.types import TensorType, broadcast, dim, dim_str, dims_equal
from compiler.ops.registry import Attrs, OpDef, Port, ShapeError, need, need_float, register, sample, tensor
from compiler.ops.hints import choices, divisors_near
from compiler.diagnostics.codes import DTYPE_MISMATCH


class AttentionAttrs(Attrs):
    heads: PositiveInt
    dropout: confloat(ge=0.0, lt=1.0) = 0.0  # type: ignore[valid-type]
    causal: bool = False
    scale: float | None = None
    fused: bool = False       # lower to F.scaled_dot_product_attention (set by the sdpa pass)
    # Grouped-query attention: keys and values have kv_heads heads, each shared by heads // kv_heads
    # query heads (kv_heads=1 is multi-query attention); none means as many as the queries.
    kv_heads: PositiveInt | None = None
    # Sliding window: a query attends only to keys fewer than `window` positions before it (and,
    # when not causal, after it), as in Mistral and Longformer.
    window: PositiveInt | None = None

    @property
    def key_heads(self) -> int:
        return self.kv_heads or self.heads


def _check_qkv(a: AttentionAttrs, q: TensorType, k: TensorType, v: TensorType) -> None:
    if a.heads % a.key_heads:
        raise ShapeError(f"Attention heads={a.heads} are not a multiple of kv_heads={a.key_heads}", None,
                         hint="each key/value head serves heads // kv_heads query heads")
    for slot, (t, what, heads) in enumerate(((q, "query", a.heads), (k, "key", a.key_heads), (v, "value", a.key_heads))):
        need_float(t, slot, f"Attention {what}")
        if t.rank != 3:
            raise ShapeError(f"Attention {what} must be [B, T, features], got {t.shape_str()}", slot)
        features = t.shape[2]
        if features.is_int and int(features) % heads:
            label = "kv_heads" if slot and a.kv_heads is not None else "heads"
            raise ShapeError(f"Attention {what} features {features} are not divisible by {label}={heads}", slot,
                             hint=f"{choices(label, divisors_near(int(features), heads))} divide {features}")
    if not dims_equal(q.shape[2] * a.key_heads, k.shape[2] * a.heads):
        if a.kv_heads is None:
            hint = "for grouped-query attention, give Attention kv_heads=" if q.shape[2].is_int else None
            raise ShapeError(f"query and key features differ: {dim_str(q.shape[2])} vs {dim_str(k.shape[2])}", 1,
                             hint=hint and _gqa_hint(a, q, k))
        raise ShapeError(f"query and key head sizes differ: {dim_str(q.shape[2])} / {a.heads} heads vs "
                         f"{dim_str(k.shape[2])} / {a.key_heads} kv_heads", 1)
    if not dims_equal(k.shape[1], v.shape[1]):
        raise ShapeError(f"key and value lengths differ: {k.shape_str()} vs {v.shape_str()}", 2)
    if broadcast(q.shape[:1], k.shape[:1]) is None or broadcast(k.shape[:1], v.shape[:1]) is None:
        raise ShapeError(f"query, key and value batch sizes differ: {q.shape_str()}, {k.shape_str()}, {v.shape_str()}", 1)


def _gqa_hint(a: AttentionAttrs, q: TensorType, k: TensorType) -> str | None:
    """`kv_heads=N` when the key's width is a whole number of query heads."""
    head_dim = q.shape[2] / a.heads
    kv = k.shape[2] / head_dim
    if kv.is_int and a.heads % int(kv) == 0:
        return f"for grouped-query attention with {int(kv)} key/value heads, give Attention kv_heads={int(kv)}"
    return None


def _mask_as_4d(mask: TensorType, q: TensorType, k: TensorType) -> tuple:
    if mask.rank == 2:
        return (mask.shape[0], ONE, ONE, mask.shape[1])
    if mask.rank == 3:
        return (mask.shape[0], ONE, mask.shape[1], mask.shape[2])
    if mask.rank == 4:
        return mask.shape
    raise ShapeError(f"Attention mask must be [B, Tk], [B, Tq, Tk] or [B, 1, Tq, Tk], got {mask.shape_str()}", 3)


def _infer_attention(a: AttentionAttrs, ins):
    q, k, v = (need(ins[i], i, n) for i, n in enumerate(("Attention query", "Attention key", "Attention value")))
    _check_qkv(a, q, k, v)
    scores = (q.shape[0], dim(a.heads), q.shape[1], k.shape[1])
    mask, bias = (ins + [None, None])[3:5]
    if mask is not None:
        if mask.dtype != "bool":
            raise ShapeError(f"Attention mask must be bool (True = may attend), got {mask.dtype}", 3, code=DTYPE_MISMATCH,
                             hint="declare it like `in mask: [B, S] bool`: a model's bool inputs also take HF's "
                                  "int and float 0/1 masks, converted once where the model begins",
                             expected_dtype="bool")
        if broadcast(scores, _mask_as_4d(mask, q, k)) != scores:
            raise ShapeError(f"Attention mask {mask.shape_str()} does not fit the scores {_fmt(scores)}", 3)
    if bias is not None:
        need_float(bias, 4, "Attention bias")
        if bias.rank != 4 or broadcast(scores, bias.shape) != scores:
            raise ShapeError(f"Attention bias {bias.shape_str()} does not broadcast to the scores {_fmt(scores)}", 4)
    return [TensorType((q.shape[0], q.shape[1], v.shape[2] * a.heads / a.key_heads), q.dtype)]


def _fmt(shape) -> str:
    return "[" + ", ".join(dim_str(d) for d in shape) + "]"


def _mask_index(rank: int) -> str:
    return {2: "[:, None, None, :]", 3: "[:, None]", 4: ""}[rank]


def _caches(a: AttentionAttrs, ctx) -> bool:
    """Whether this attention keeps its keys and values in the decoding cache: a causal one in a
    block that takes a cache (compiler/codegen/decoding.py)."""
    return ctx.cache is not None and (bool(a.causal) or is_residual(a.causal))


def _cache_update(a: AttentionAttrs, ctx, keys: str, values: str) -> list[str]:
    """Append the new keys and values to the cache and attend over all of them (before grouped
    heads are repeated: the cache holds kv_heads heads)."""
    if not _caches(a, ctx):
        return []
    test = f"{ctx.cache} is not None" + (f" and {a.causal}" if is_residual(a.causal) else "")
    return [f"if {test}:", f'    {keys}, {values} = {ctx.cache}.update(self, "{ctx.outs[0]}", {keys}, {values})']


def _causal_diagonal(a: AttentionAttrs, ctx, scores: str) -> str:
    """The first diagonal of future keys: 1, or with cached keys before the queries, 1 + their count."""
    return f"1 + {scores}.shape[-1] - {scores}.shape[-2]" if _caches(a, ctx) else "1"


def _split_heads(a: AttentionAttrs, ctx, cached: bool = False) -> tuple[list[str], tuple[str, str, str]]:
    """[B, T, heads * head_dim] -> [B, heads, T, head_dim].  The head size comes from the
    parameters where the projection's width is known, and the head count from the tensor, so a
    layer sharded over heads (tensor parallelism) splits right; else the count is fixed."""
    names = tuple(ctx.temp(n) for n in ("q_heads", "k_heads", "v_heads"))
    lines = []
    for slot, (name, arg, heads) in enumerate(zip(names, ctx.args[:3], (a.heads, a.key_heads, a.key_heads))):
        width = ctx.feature(slot)
        split = f"(-1, {width // heads})" if is_residual(width) and is_residual(heads) else f"({heads}, -1)"
        lines.append(f"{name} = {arg}.unflatten(-1, {split}).transpose(1, 2)")
    if cached:
        lines += _cache_update(a, ctx, names[1], names[2])
    if not equal_in_every_configuration((a.key_heads, a.heads)):
        # Each key/value head serves `group` consecutive query heads (HF's repeat_kv).
        group = a.heads // a.key_heads
        repeats = [f"{name} = {name}.repeat_interleave({group}, dim=1)" for name in names[1:]]
        # Equal in this configuration, but parameters of their own: the class serves any divisor.
        lines += repeats if a.key_heads != a.heads else [f"if {a.key_heads} != {a.heads}:", *_indent(repeats)]
    return lines, names


def _scale(a: AttentionAttrs, ctx) -> float | None:
    """The softmax temperature when the spec gives one; otherwise 1/sqrt(head size), read from the
    tensors at run time, so the class serves every configuration (and sharded heads)."""
    return a.scale


def _lower_attention(a: AttentionAttrs, ctx) -> list[str]:
    if a.fused and _caches(a, ctx):
        # Decoding with a cache, the queries are the last positions: the fused kernel's is_causal
        # aligns them with the first keys instead, so that path attends explicitly.
        test = f"{ctx.cache} is None" + (f" or not {a.causal}" if is_residual(a.causal) else "")
        fused, explicit = _lower_sdpa(a, ctx), _lower_explicit(a, ctx)
        return [f"if {test}:", *_indent(fused), "else:", *_indent(explicit)]
    if a.fused:
        return _lower_sdpa(a, ctx)
    return _lower_explicit(a, ctx)


def _indent(lines: list[str]) -> list[str]:
    return ["    " + part for line in lines for part in line.split("\n")]


def _lower_explicit(a: AttentionAttrs, ctx) -> list[str]:
    q, k, v, mask, bias = (ctx.args + [None, None])[:5]
    lines, (qh, kh, vh) = _split_heads(a, ctx, cached=True)
    scores, weights = ctx.temp("scores"), ctx.temp("weights")
    scale = _scale(a, ctx)
    scale_expr = repr(scale) if scale is not None else f"{qh}.shape[-1] ** -0.5"
    lines.append(f"{scores} = {qh} @ {kh}.transpose(-2, -1)" + ("" if scale == 1.0 else f" * {scale_expr}"))
    if bias is not None:
        add = f"{scores} = {scores} + {bias}"
        lines += [f"if {bias} is not None:", "    " + add] if ctx.in_types[4].optional else [add]
    if mask is not None:
        fill = f"{scores} = {scores}.masked_fill(~{mask}{_mask_index(ctx.in_types[3].rank)}, torch.finfo({scores}.dtype).min)"
        lines += [f"if {mask} is not None:", "    " + fill] if ctx.in_types[3].optional else [fill]
    if (a.causal or is_residual(a.causal)) and a.window is None:
        future = (f"torch.ones({scores}.shape[-2:], dtype=torch.bool, device={scores}.device)"
                  f".triu({_causal_diagonal(a, ctx, scores)})")
        fill = f"{scores} = {scores}.masked_fill({future}, torch.finfo({scores}.dtype).min)"
        # A flag of the block's parameters is tested at run time: one class serves both settings.
        lines += [f"if {a.causal}:", "    " + fill] if is_residual(a.causal) else [fill]
    if a.window is not None:
        lines += _window_lines(a, ctx, scores)
    lines.append(f"{weights} = F.softmax({scores}, dim=-1)")
    if a.dropout > 0 or is_residual(a.dropout):
        lines.append(f"{weights} = F.dropout({weights}, {a.dropout!r}, self.training)")
    lines.append(f"{ctx.outs[0]} = ({weights} @ {vh}).transpose(1, 2).flatten(2)")
    return lines


def _window_lines(a: AttentionAttrs, ctx, scores: str) -> list[str]:
    """Mask the keys outside the window (and, when causal, after the query)."""
    offset = ctx.temp("offset")
    # With cached keys first, query i sits at position (keys - queries) + i.
    queries = (f"torch.arange({scores}.shape[-1] - {scores}.shape[-2], {scores}.shape[-1], device={scores}.device)"
               if _caches(a, ctx) else f"torch.arange({scores}.shape[-2], device={scores}.device)")
    lines = [f"{offset} = {queries}[:, None] - torch.arange({scores}.shape[-1], device={scores}.device)"]
    outside = f"({offset} >= {a.window}) | ({offset} < 0)" if a.causal else f"{offset}.abs() >= {a.window}"
    lines.append(f"{scores} = {scores}.masked_fill({outside}, torch.finfo({scores}.dtype).min)")
    return lines


def _lower_sdpa(a: AttentionAttrs, ctx) -> list[str]:
    """The same computation through torch's fused kernel (flash / memory-efficient on CUDA).

    A causal mask alone is passed as `is_causal`, never materialized; padding,
    causal and bias terms otherwise combine into one `attn_mask`.
    """
    mask, bias = (ctx.args + [None, None])[3:5]
    lines, heads = _split_heads(a, ctx)
    out = ctx.outs[0]
    if mask is None and bias is None:
        return lines + [f"{out} = {_sdpa(a, ctx, heads, None, a.causal)}"]
    attn_mask = ctx.temp("attn_mask")
    call = f"{out} = {_sdpa(a, ctx, heads, attn_mask, False)}"
    if mask is not None and bias is None and ctx.in_types[3].optional:
        # Two paths: without a mask the kernel needs none (or only is_causal).
        plain = f"{out} = {_sdpa(a, ctx, heads, None, a.causal)}"
        body = _mask_lines(a, ctx, attn_mask, heads, mask, bias, mask_known=True) + [call]
        return lines + [f"if {mask} is None:", "    " + plain, "else:", *("    " + line for line in body)]
    return lines + _mask_lines(a, ctx, attn_mask, heads, mask, bias) + [call]


def _sdpa(a: AttentionAttrs, ctx, heads: tuple[str, str, str], attn_mask: str | None, causal: bool) -> str:
    kwargs = [f"attn_mask={attn_mask}"] if attn_mask else []
    if a.dropout > 0 or is_residual(a.dropout):
        kwargs.append(f"dropout_p={a.dropout!r} if self.training else 0.0")
    if causal:
        kwargs.append("is_causal=True")
    scale = _scale(a, ctx)
    if scale is not None:
        kwargs.append(f"scale={scale!r}")
    # With dropout, a training step would run SDPA's unfused CPU path: the runtime's
    # dropout_attention computes it in fewer passes (and is SDPA itself otherwise).
    call = "dropout_attention" if a.dropout > 0 or is_residual(a.dropout) else "F.scaled_dot_product_attention"
    return f"{call}({', '.join([*heads, *kwargs])}).transpose(1, 2).flatten(2)"


def _mask_lines(a: AttentionAttrs, ctx, name: str, heads, mask: str | None, bias: str | None,
                mask_known: bool = False) -> list[str]:
    """Lines that build `name`: None, a bool keep-mask, or (with a bias) an additive float mask.

    Optional inputs may be None at run time, so each term is guarded unless the
    compiler knows it is present.
    """
    qh, kh, _ = heads
    mask_optional = mask is not None and ctx.in_types[3].optional and not mask_known
    bias_optional = bias is not None and ctx.in_types[4].optional
    # Masked scores are the dtype's minimum, as in the explicit form, rather than -inf, so a
    # query whose keys are all masked attends uniformly at every -O level instead of giving NaN.
    additive = f"{name} = torch.zeros_like({name}, dtype={qh}.dtype).masked_fill(~{name}, torch.finfo({qh}.dtype).min)"
    if mask is not None and not mask_optional and bias is None and not a.causal:
        return [f"{name} = {mask}{_mask_index(ctx.in_types[3].rank)}", additive]
    lines = [] if mask is not None and not mask_optional else [f"{name} = None"]
    if mask is not None:
        keep = f"{name} = {mask}{_mask_index(ctx.in_types[3].rank)}"
        lines += [f"if {mask} is not None:", "    " + keep] if mask_optional else [keep]
    if a.causal:
        tril = f"torch.ones({qh}.shape[-2], {kh}.shape[-2], dtype=torch.bool, device={qh}.device).tril()"
        if mask is not None and not mask_optional:
            lines.append(f"{name} = {name} & {tril}")
        else:
            lines.append(f"{name} = {tril} if {name} is None else {name} & {tril}")
    if bias is not None:
        fill = f"{bias}.masked_fill(~{name}, torch.finfo({bias}.dtype).min)"
        combine = f"{name} = {bias} if {name} is None else {fill}"
        lines += [f"if {bias} is not None:", "    " + combine] if bias_optional else [combine]
    elif a.causal or not mask_optional:
        lines.append(additive)
    else:
        lines += [f"if {name} is not None:", "    " + additive]
    return lines


def _scores(a: AttentionAttrs, ins) -> Dim:
    q, k = ins[:2]
    return q.shape[0] * a.heads * q.shape[1] * k.shape[1]


def _attention_macs(a: AttentionAttrs, ins, outs):
    # q k^T and weights @ v: head_dim and head_dim_v multiply-adds per score
    q, v = ins[0], ins[2]
    return _scores(a, ins) * (q.shape[2] / a.heads + v.shape[2] / a.key_heads)


def _attention_flops(a: AttentionAttrs, ins, outs):
    # the two products (2 FLOPs per multiply-add, as torch's flop counter counts them),
    # plus about 5 per score for scaling, masking and the softmax.
    # Grouped keys and values are repeated to every query head first: _attention_macs counts per
    # head q's features / heads and v's / kv_heads.
    return 2 * _attention_macs(a, ins, outs) + 5 * _scores(a, ins)


_QKV = (tensor(2, 5, 8), tensor(2, 7, 8), tensor(2, 7, 8))
_ATTENTION_SAMPLES = (
    sample(*_QKV, heads=2),
    sample(tensor(2, 5, 8), tensor(2, 5, 8), tensor(2, 5, 6), heads=2, causal=True),
    sample(*_QKV, tensor(2, 7, dtype="bool"), heads=4, scale=1.0),
    sample(*_QKV, tensor(2, 5, 7, dtype="bool"), tensor(1, 2, 5, 7), heads=2, dropout=0.1),
    sample(*_QKV, tensor(2, 1, 5, 7, dtype="bool"), heads=2, fused=True),
    sample(*_QKV, tensor(2, 7, dtype="bool"), tensor(1, 2, 5, 7), heads=2, causal=True, fused=True),
    sample(tensor(2, 5, 8), tensor(2, 5, 8), tensor(2, 5, 8), heads=2, causal=True, fused=True),
    sample(tensor(2, 5, 16), tensor(2, 5, 4), tensor(2, 5, 4), tensor(2, 5, dtype="bool"), heads=4, kv_heads=1,
           causal=True),
    sample(tensor(2, 5, 16), tensor(2, 5, 8), tensor(2, 5, 8), heads=4, kv_heads=2, fused=True),
    sample(tensor(2, 9, 8), tensor(2, 9, 8), tensor(2, 9, 8), heads=2, window=3, causal=True),
    sample(tensor(2, 9, 8), tensor(2, 9, 8), tensor(2, 9, 8), heads=2, window=2),
)


register(OpDef(
    "Attention", AttentionAttrs,
    (Port("query"), Port("key"), Port("value"), Port("mask", optional=True), Port("bias", optional=True)),
    _infer_attention, _lower_attention,
    doc="Multi-head scaled dot-product attention core (no projections): splits heads, "
        "softmax(q k^T * scale + bias) v with padding/causal/sliding-window masking, merges heads. "
        "kv_heads < heads is grouped-query attention (keys and values with fewer heads).",
    pure=lambda a: a.dropout == 0,      # dropout on the weights is random in training
    training_only=("dropout",),
    flops=_attention_flops,
    macs=_attention_macs,
    # the scores and the softmax weights, [B, heads, Tq, Tk] each (the fused sdpa kernels avoid them)
    workspace=lambda a, ins, outs: 2 * _scores(a, ins),
    samples=_ATTENTION_SAMPLES,
))
