"""T5 v1.1 (specs/t5.dl's T5V11Model and T5V11ForConditionalGeneration) weight for weight
against HuggingFace's T5 with T5Config(feed_forward_proj="gated-gelu",
tie_word_embeddings=False): the gated-GELU feed-forward network and the untied,
unscaled head.  A small configuration in the fast lane, the full-size count on meta.

The installed transformers (5.x) reads tie_word_embeddings=False as "do not scale the
decoder output" only, and ties lm_head to the shared embedding anyway (configuration_t5.py:
"we tie weights always").  T5 v1.1's published checkpoints hold an lm_head of their own,
so ours stays untied: its state_dict loads strictly (both keys are there), the outputs
match, and it has vocab * d_model parameters more than the tied reference module."""
from __future__ import annotations

import pytest
import torch

from tests.helpers import ROOT, compile_to_module
from tests.lazy_import import lazy_import

transformers = lazy_import("transformers")

ATOL, RTOL = 1e-5, 1e-4
SMALL = {"vocab": 97, "d_model": 32, "d_kv": 8, "d_ff": 64, "layers": 2, "heads": 4, "num_buckets": 8,
         "max_distance": 16, "dropout": 0.0}
HF_SMALL = {"vocab_size": 97, "d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 2, "num_heads": 4,
            "relative_attention_num_buckets": 8, "relative_attention_max_distance": 16, "dropout_rate": 0.0}


def v11_config(**overrides) -> "transformers.T5Config":
    return transformers.T5Config(feed_forward_proj="gated-gelu", tie_word_embeddings=False,
                                 attn_implementation="eager", **overrides)


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def t5_small(tmp_path_factory):
    return compile_to_module(ROOT / "specs" / "t5.dl", tmp_path_factory.mktemp("t5v11"), SMALL, name="t5v11")


@pytest.mark.parametrize("name, reference_name", [("T5V11Model", "T5Model"),
                                                  ("T5V11ForConditionalGeneration", "T5ForConditionalGeneration")])
def test_small_outputs_match(t5_small, name, reference_name):
    torch.manual_seed(0)
    reference = getattr(transformers, reference_name)(v11_config(**HF_SMALL)).eval()
    ours = getattr(t5_small, name)().eval()
    with torch.no_grad():
        for parameter in ours.parameters():
            parameter.zero_()
    result = ours.load_reference_state_dict(reference.state_dict())          # strict
    assert not result.missing_keys and not result.unexpected_keys
    untied = 97 * 32 if name.endswith("Generation") else 0          # see the module docstring
    assert parameter_count(ours) == parameter_count(reference) + untied
    if name.endswith("Generation"):
        assert ours.lm_head.weight is not ours.shared.weight
    torch.manual_seed(1)
    src, tgt = torch.randint(0, 97, (3, 9)), torch.randint(0, 97, (3, 7))
    src_mask = torch.ones(3, 9, dtype=torch.bool)
    src_mask[1, 5:] = False
    with torch.no_grad():
        out = reference(input_ids=src, decoder_input_ids=tgt, attention_mask=src_mask.long())
        field = "logits" if name.endswith("Generation") else "last_hidden_state"
        expected, actual = getattr(out, field), getattr(ours(src, tgt, src_mask), field)
    torch.testing.assert_close(actual, expected, atol=ATOL, rtol=RTOL)


def test_full_size_parameter_count():
    from generated import t5
    with torch.device("meta"):
        reference = transformers.T5ForConditionalGeneration(v11_config())
        ours = t5.T5V11ForConditionalGeneration()
    # t5-small's shape with a second input projection per feed-forward layer (wi_0, wi_1) and
    # an lm_head of its own, which the installed reference ties (module docstring).
    gated = 60_506_624 + 12 * 512 * 2048
    assert parameter_count(reference) == gated
    assert parameter_count(ours) == gated + 32128 * 512


def test_training_lowers_the_loss(t5_small):
    torch.manual_seed(0)
    model = t5_small.T5V11ForConditionalGeneration().train()
    src, tgt = torch.randint(0, 97, (4, 9)), torch.randint(0, 97, (4, 7))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        loss = model(src, tgt[:, :-1], labels=tgt[:, 1:]).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses
