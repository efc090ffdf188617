"""GPT-1 (specs/gpt1.dl) weight for weight against HuggingFace's OpenAIGPTModel,
OpenAIGPTLMHeadModel and OpenAIGPTForSequenceClassification: small configurations
in the fast lane, the paper's configuration (parameter count) in the slow one."""
from __future__ import annotations

import pytest
import torch

from tests.helpers import ROOT, compile_to_module
from tests.lazy_import import lazy_import

transformers = lazy_import("transformers")

SPEC = ROOT / "specs" / "gpt1.dl"
SMALL = {"vocab": 97, "positions": 32, "d_model": 48, "layers": 2, "heads": 4, "dropout": 0.0}
ATOL, RTOL = 1e-5, 1e-4


def _config(**extra) -> "transformers.OpenAIGPTConfig":
    return transformers.OpenAIGPTConfig(vocab_size=97, n_positions=32, n_embd=48, n_layer=2, n_head=4,
                                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, **extra)


@pytest.fixture(scope="module")
def gpt1(tmp_path_factory):
    return compile_to_module(SPEC, tmp_path_factory.mktemp("gpt1"), SMALL, name="gpt1")


def _batch():
    torch.manual_seed(1)
    ids = torch.randint(1, 97, (3, 10))
    mask = torch.ones(3, 10, dtype=torch.bool)
    mask[1, 7:] = False                     # a padded example (right padding)
    return ids, mask


def _loaded(ours_cls, reference):
    ours = ours_cls().eval()
    ours.load_reference_state_dict(reference.state_dict())
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in reference.parameters())
    return ours


def test_gpt1_model_matches_openai_gpt(gpt1):
    torch.manual_seed(0)
    reference = transformers.OpenAIGPTModel(_config()).eval()
    ours = _loaded(gpt1.GPT1Model, reference)
    ids, mask = _batch()
    expected = reference(ids, attention_mask=mask.long()).last_hidden_state
    got = ours(ids, mask)
    torch.testing.assert_close(got[mask], expected[mask], atol=ATOL, rtol=RTOL)


def test_gpt1_lm_head_matches_logits_and_shifted_loss(gpt1):
    torch.manual_seed(0)
    reference = transformers.OpenAIGPTLMHeadModel(_config()).eval()
    ours = _loaded(gpt1.GPT1LMHeadModel, reference)
    ids, _ = _batch()
    labels = ids.clone()
    labels[0, :3] = -100                    # HF's ignore index
    expected = reference(ids, labels=labels)
    loss, logits = ours(ids, None, labels)
    torch.testing.assert_close(logits, expected.logits, atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(loss, expected.loss, atol=ATOL, rtol=RTOL)
    assert ours(ids)[0] is None             # no labels, no loss
    assert ours.lm_head.weight is ours.transformer.token_embeddings.weight


def test_gpt1_classifies_at_each_examples_extract_position(gpt1):
    torch.manual_seed(0)
    reference = transformers.OpenAIGPTForSequenceClassification(_config(num_labels=2, pad_token_id=0)).eval()
    ours = _loaded(gpt1.GPT1ForSequenceClassification, reference)
    ids, mask = _batch()
    ids[~mask] = 0                          # padding tokens; the last real one is the [EXTRACT] position
    cls_index = mask.long().sum(1) - 1
    labels = torch.tensor([0, 1, 1])
    expected = reference(ids, attention_mask=mask.long(), labels=labels)
    loss, logits = ours(ids, cls_index, mask, labels)
    torch.testing.assert_close(logits, expected.logits, atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(loss, expected.loss, atol=ATOL, rtol=RTOL)


def test_gpt1_lm_trains(gpt1):
    torch.manual_seed(0)
    model = gpt1.GPT1LMHeadModel().train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    ids = torch.randint(1, 97, (4, 12))
    losses = []
    for _ in range(8):
        loss, _ = model(ids, None, ids)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


@pytest.mark.slow
def test_gpt1_paper_configuration_has_the_reference_parameter_count(tmp_path):
    reference = transformers.OpenAIGPTModel(transformers.OpenAIGPTConfig())
    expected = sum(p.numel() for p in reference.parameters())
    ours = compile_to_module(SPEC, tmp_path, name="gpt1_full").GPT1Model()
    assert sum(p.numel() for p in ours.parameters()) == expected == 116_534_784
    ours.load_reference_state_dict(reference.state_dict())
