"""dlc/runtime/attention.py: the training build's attention with dropout computes what
F.scaled_dot_product_attention does (torch's math path on CPU), output and gradients, with the
same dropout mask drawn from the same seed; and -O2 training builds call it."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from dlc.runtime.attention import dropout_attention
from tests.helpers import ROOT, compile_to_module

B, H, S, D = 2, 3, 7, 4


def _heads(generator: torch.Generator) -> list[torch.Tensor]:
    """q, k, v as the generated code makes them: views of one fused projection, heads transposed."""
    fused = torch.randn(B, S, 3 * H * D, generator=generator, dtype=torch.float64).float()
    return [t.unflatten(-1, (H, D)).transpose(1, 2) for t in fused.requires_grad_().chunk(3, dim=-1)]


def _padding_mask(rows: int) -> torch.Tensor:
    keep = torch.ones(B, 1, rows, S, dtype=torch.bool)
    keep[1, ..., 5:] = False
    return torch.zeros(keep.shape).masked_fill(~keep, torch.finfo(torch.float32).min)


MASKS = {"none": lambda: None, "padding [B,1,1,S]": lambda: _padding_mask(1),
         "per query [B,1,S,S]": lambda: _padding_mask(S) + torch.randn(1, 1, S, S)}


@pytest.mark.parametrize("is_causal", [False, True])
@pytest.mark.parametrize("scale", [None, 0.3])
@pytest.mark.parametrize("mask", sorted(MASKS))
def test_equals_sdpa_with_the_same_dropout(mask, scale, is_causal):
    if is_causal and mask != "none":
        pytest.skip("SDPA takes is_causal or attn_mask, not both")
    attn_mask = MASKS[mask]()
    results = []
    for attention in (F.scaled_dot_product_attention, dropout_attention):
        q, k, v = _heads(torch.Generator().manual_seed(1))
        torch.manual_seed(0)                   # the same dropout mask in both
        out = attention(q, k, v, attn_mask=attn_mask, dropout_p=0.25, is_causal=is_causal, scale=scale)
        upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(2))
        results.append((out, torch.autograd.grad((out * upstream).sum(), [q, k, v])))
    (expected, expected_grads), (got, got_grads) = results
    undropped = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal, scale=scale)
    assert not torch.allclose(got, undropped)  # dropout did drop
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    for g, e in zip(got_grads, expected_grads):
        torch.testing.assert_close(g, e, atol=1e-6, rtol=1e-5)


def test_without_dropout_it_is_sdpa():
    q, k, v = _heads(torch.Generator().manual_seed(1))
    assert torch.equal(dropout_attention(q, k, v, dropout_p=0.0), F.scaled_dot_product_attention(q, k, v))


def test_O2_builds_call_it_where_attention_has_dropout(tmp_path):
    module = compile_to_module(ROOT / "specs" / "bert.dl", tmp_path, {"layers": 1, "hidden": 16, "heads": 2,
                                                                       "intermediate": 32}, opt_level=2)
    text = Path(module.__file__).read_text()
    assert "dropout_attention(q_heads" in text and "F.scaled_dot_product_attention" not in text
    assert "def dropout_attention" in (Path(module.__file__).parent / "dlc_runtime.py").read_text()
    model = module.BertModel(vocab=50, max_positions=16).train()
    ids = torch.randint(0, 50, (2, 6))
    model(ids, torch.ones(2, 6, dtype=torch.bool))[0].sum().backward()   # runs, gradients flow
    assert model.encoder[0].attention.query_key_value.weight.grad is not None
