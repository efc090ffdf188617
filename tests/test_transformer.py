"""The Transformer of specs/transformer.dl: builds, runs, trains, and counts
parameters as the closed-form formula says."""
from __future__ import annotations

import math

import pytest
import torch

from tests.helpers import ROOT, compile_to_module

SPEC = ROOT / "specs" / "transformer.dl"
SMALL = {"vocab": 101, "d_model": 32, "heads": 4, "d_ff": 64, "layers": 2, "dropout": 0.0, "max_len": 64}


def transformer_parameter_count(vocab: int, d_model: int, d_ff: int, layers: int, tied: bool) -> int:
    """Closed form, written from the paper rather than from the generator."""
    attention = 4 * (d_model * d_model + d_model)            # q, k, v, output projections with biases
    ffn = d_model * d_ff + d_ff + d_ff * d_model + d_model
    layer_norm = 2 * d_model
    encoder_layer = attention + ffn + 2 * layer_norm
    decoder_layer = 2 * attention + ffn + 3 * layer_norm
    embeddings = vocab * d_model * (1 if tied else 3)         # source, target, pre-softmax projection
    return layers * (encoder_layer + decoder_layer) + embeddings


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return compile_to_module(SPEC, tmp_path_factory.mktemp("small"), overrides=SMALL, name="transformer_small")


def test_base_configuration_parameter_count():
    from generated.transformer import Transformer
    with torch.device("meta"):          # the count, ties included, without initializing 63M weights (2 s)
        model = Transformer()
    count = sum(p.numel() for p in model.parameters())
    assert count == transformer_parameter_count(37000, 512, 2048, 6, tied=True) == 63_082_496


def test_untied_parameter_count(tmp_path):
    module = compile_to_module(SPEC, tmp_path, overrides={**SMALL, "tie_embeddings": False}, name="untied")
    model = module.Transformer()
    assert sum(p.numel() for p in model.parameters()) == transformer_parameter_count(101, 32, 64, 2, tied=False)
    assert model.generator.weight is not model.src_embed.weight


def test_tied_weights_are_one_tensor(small):
    model = small.Transformer()
    assert model.generator.weight is model.src_embed.weight
    assert sum(p.numel() for p in model.parameters()) == transformer_parameter_count(101, 32, 64, 2, tied=True)


@pytest.mark.parametrize("batch, src_len, tgt_len", [(1, 1, 1), (3, 17, 5), (2, 64, 64)])
def test_forward_any_batch_and_lengths(small, batch, src_len, tgt_len):
    model = small.Transformer().eval()
    src = torch.randint(0, 101, (batch, src_len))
    tgt = torch.randint(0, 101, (batch, tgt_len))
    logits = model(src, tgt)
    assert logits.shape == (batch, tgt_len, 101)
    assert torch.isfinite(logits).all()


def test_backward_reaches_every_parameter(small):
    model = small.Transformer()
    logits = model(torch.randint(0, 101, (2, 9)), torch.randint(0, 101, (2, 7)))
    logits.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_decoder_is_causal(small):
    torch.manual_seed(0)
    model = small.Transformer().eval()
    src = torch.randint(0, 101, (2, 9))
    tgt = torch.randint(0, 101, (2, 8))
    changed = tgt.clone()
    changed[:, 5] = (changed[:, 5] + 1) % 101          # a future token for positions 0..4
    before, after = model(src, tgt), model(src, changed)
    torch.testing.assert_close(before[:, :5], after[:, :5], rtol=0, atol=0)
    assert not torch.allclose(before[:, 5:], after[:, 5:])


def test_source_padding_mask_hides_padded_tokens(small):
    torch.manual_seed(0)
    model = small.Transformer().eval()
    src = torch.randint(0, 101, (1, 9))
    tgt = torch.randint(0, 101, (1, 4))
    mask = torch.ones(1, 9, dtype=torch.bool)
    mask[:, 6:] = False
    noisy = src.clone()
    noisy[:, 6:] = (noisy[:, 6:] + 7) % 101              # change only padded positions
    torch.testing.assert_close(model(src, tgt, mask), model(noisy, tgt, mask), rtol=0, atol=1e-6)
    assert not torch.allclose(model(src, tgt), model(noisy, tgt))


def test_training_lowers_the_loss(small):
    torch.manual_seed(0)
    model = small.Transformer().train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    src = torch.randint(0, 101, (8, 12))
    tgt = torch.randint(0, 101, (8, 10))
    losses = []
    for _ in range(12):
        logits = model(src, tgt[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 101), tgt[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


def test_embedding_scale_and_sinusoid_table(small):
    """Section 3.4/3.5: embeddings times sqrt(d_model), plus the sine/cosine table."""
    model = small.Transformer().eval()
    table = model.positions.table
    pos, i = 3, 4
    assert table[pos, 2 * i].item() == pytest.approx(math.sin(pos / 10000 ** (2 * i / 32)), abs=1e-6)
    assert table[pos, 2 * i + 1].item() == pytest.approx(math.cos(pos / 10000 ** (2 * i / 32)), abs=1e-6)
    assert "positions.table" not in model.state_dict()


MHA_SPEC = """
import attention
model Block(d: int = 32, heads: int = 4) {
    in x: [B, S, d]
    in kv: [B, T, d]
    in mask: [B, T] bool optional
    out y = MultiHeadAttention(d, heads)(x, kv, mask)
}
"""


def test_multi_head_attention_matches_torch(tmp_path):
    torch.manual_seed(0)
    ours = compile_to_module(MHA_SPEC, tmp_path, name="mha").Block().eval()
    ref = torch.nn.MultiheadAttention(32, 4, batch_first=True).eval()
    attn = ours.y
    with torch.no_grad():
        q, k, v = ref.in_proj_weight.chunk(3)
        qb, kb, vb = ref.in_proj_bias.chunk(3)
        for layer, w, b in ((attn.query, q, qb), (attn.key, k, kb), (attn.value, v, vb)):
            layer.weight.copy_(w)
            layer.bias.copy_(b)
        attn.output.weight.copy_(ref.out_proj.weight)
        attn.output.bias.copy_(ref.out_proj.bias)
    x, kv = torch.randn(3, 5, 32), torch.randn(3, 7, 32)
    mask = torch.ones(3, 7, dtype=torch.bool)
    mask[1, 4:] = False
    expected, _ = ref(x, kv, kv, key_padding_mask=~mask)
    torch.testing.assert_close(ours(x, kv, mask), expected, rtol=1e-5, atol=1e-6)
    expected_nomask, _ = ref(x, kv, kv)
    torch.testing.assert_close(ours(x, kv), expected_nomask, rtol=1e-5, atol=1e-6)
