"""Attention as a training build computes it (the sdpa pass's lowering with attention dropout).

Generated code never imports dlc: codegen reads this file as text (codegen/helpers.py) and
copies what a generated module uses into it or into dlc_runtime.py.
"""
import torch
from torch.nn import functional as F


def dropout_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor | None = None,
                      dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None) -> torch.Tensor:
    """F.scaled_dot_product_attention(q, k, v, ...), computed in fewer passes over the scores where
    torch's kernel would fall back to its unfused form.

    torch's CPU flash kernel has no dropout: with dropout_p > 0 (training) SDPA runs its math
    path, which scales q and k apart, adds the mask in a pass of its own and takes a NaN-safe
    softmax (three more passes over the [.., Tq, Tk] scores, and their backward).  Here the scale
    and an additive float mask are one baddbmm, then softmax, dropout and the product with v.  The
    result is the same: dlc's masks are additive with the dtype's minimum, never -inf, so no row is
    all -inf and the safe softmax changes nothing.  Everywhere else (no dropout, another device, a
    bool mask, tracing) it is torch's SDPA.
    """
    if (dropout_p == 0.0 or q.device.type != "cpu" or torch.compiler.is_compiling()
            or (attn_mask is not None and attn_mask.dtype == torch.bool) or q.shape[:-2] != k.shape[:-2]):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p,
                                              is_causal=is_causal, scale=scale)
    batch, queries, keys = q.shape[:-2], q.shape[-2], k.shape[-2]
    if is_causal:   # SDPA's is_causal: query i sees keys 0..i
        future = torch.ones(queries, keys, dtype=torch.bool, device=q.device).triu(1)
        causal = torch.zeros(queries, keys, dtype=q.dtype, device=q.device).masked_fill(future, torch.finfo(q.dtype).min)
        attn_mask = causal if attn_mask is None else attn_mask + causal
    q3, k3, v3 = (t.reshape(-1, t.shape[-2], t.shape[-1]) for t in (q, k, v))
    alpha = q.shape[-1] ** -0.5 if scale is None else scale
    if attn_mask is None:
        scores = torch.bmm(q3, k3.transpose(1, 2)).mul_(alpha) if alpha != 1.0 else torch.bmm(q3, k3.transpose(1, 2))
    else:           # a mask row per query (or one for all of them) for each batch entry and head
        rows = attn_mask.shape[-2] if attn_mask.dim() >= 2 else 1
        bias = attn_mask.expand(*batch, rows, keys).reshape(-1, rows, keys)
        scores = torch.baddbmm(bias.to(q3.dtype), q3, k3.transpose(1, 2), alpha=alpha)
    weights = F.dropout(torch.softmax(scores, dim=-1), dropout_p, True)
    return torch.bmm(weights, v3).view(*batch, queries, v.shape[-1])
