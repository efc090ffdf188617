"""generate() on batches HF's way: left-padded prompts with an `attention_mask` (GPT-2, Llama),
padded sources of an encoder-decoder (T5), and the encoder-decoder's source side computed once
per call (the encoder, each cross-attention's keys and values), as HF computes it, and the last
position only scored (`logits_to_keep`)."""
from __future__ import annotations

import pytest
import torch

from tests.helpers import ROOT, compile_to_module
from tests.test_decoding import GPT2_SMALL, LLAMA_SMALL, T5_SMALL, VOCAB, gpt2_pair, t5_pair  # noqa: F401
from tests.lazy_import import lazy_import

transformers = lazy_import("transformers")

PAD = 0
# Two prompts of different lengths, the shorter padded on the left (HF's convention for a
# decoder-only batch): 6 and 3 real tokens.
PROMPTS = torch.randint(1, VOCAB, (2, 6), generator=torch.Generator().manual_seed(11))
MASK = torch.tensor([[1, 1, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1]])
LEFT_PADDED = PROMPTS.masked_fill(MASK == 0, PAD)
# Two sources of an encoder-decoder, the second padded on the right (T5's tokenizers pad there).
SOURCES = torch.randint(2, VOCAB, (2, 7), generator=torch.Generator().manual_seed(12))
SOURCE_MASK = torch.tensor([[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0, 0]])
SEARCHES = [{"num_beams": 1}, {"num_beams": 4, "eos_token_id": 7, "length_penalty": 1.0}]


@pytest.fixture(scope="module")
def llama_pair(tmp_path_factory):
    torch.manual_seed(0)
    module = compile_to_module(ROOT / "specs" / "llama.dl", tmp_path_factory.mktemp("decode"), LLAMA_SMALL,
                               name="llama")
    config = transformers.LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, attn_implementation="eager")
    reference = transformers.LlamaForCausalLM(config).eval()
    ours = module.LlamaForCausalLM().eval()
    ours.load_reference_state_dict(reference.state_dict())
    return module, ours, reference


def _hf_generate(reference, ids, mask, search: dict):
    pad = search.get("eos_token_id", PAD)
    return reference.generate(ids, attention_mask=mask, max_new_tokens=8, do_sample=False, pad_token_id=pad, **search)


def _ours(model, ids, mask, search: dict, **kwargs):
    return model.generate(ids, attention_mask=mask, max_new_tokens=8, pad_token_id=search.get("eos_token_id", PAD),
                          **search, **kwargs)


@pytest.mark.parametrize("search", SEARCHES, ids=["greedy", "beam"])
def test_gpt2_left_padded_batch_equals_hf(gpt2_pair, search):  # noqa: F811
    _, ours, reference = gpt2_pair
    expected = _hf_generate(reference, LEFT_PADDED, MASK, search)
    assert torch.equal(_ours(ours, LEFT_PADDED, MASK, search), expected)


@pytest.mark.parametrize("search", SEARCHES, ids=["greedy", "beam"])
def test_llama_left_padded_batch_equals_hf(llama_pair, search):
    _, ours, reference = llama_pair
    expected = _hf_generate(reference, LEFT_PADDED, MASK, search)
    assert torch.equal(_ours(ours, LEFT_PADDED, MASK, search), expected)


def test_a_padded_prompt_decodes_as_it_does_alone(gpt2_pair):  # noqa: F811
    """The padding changes nothing: the short prompt's new ids are those it gets on its own."""
    _, ours, _ = gpt2_pair
    batch = ours.generate(LEFT_PADDED, attention_mask=MASK, max_new_tokens=8)
    alone = ours.generate(PROMPTS[1:, 3:], max_new_tokens=8)
    assert torch.equal(batch[1, 6:], alone[0, 3:])


def test_the_mask_gives_the_same_ids_with_and_without_the_cache(gpt2_pair):  # noqa: F811
    _, ours, _ = gpt2_pair
    for search in SEARCHES:
        assert torch.equal(_ours(ours, LEFT_PADDED, MASK, search), _ours(ours, LEFT_PADDED, MASK, search,
                                                                           use_cache=False))


@pytest.mark.parametrize("search", SEARCHES, ids=["greedy", "beam"])
def test_t5_padded_sources_equal_hf(t5_pair, search):  # noqa: F811
    _, ours, reference = t5_pair
    search = {**search, "eos_token_id": 1}
    expected = _hf_generate(reference, SOURCES, SOURCE_MASK, search)
    got = _ours(ours, SOURCES, SOURCE_MASK, search, decoder_start_token_id=0)
    assert torch.equal(got, expected)
    alone = _ours(ours, SOURCES[1:, :4], None, search, decoder_start_token_id=0)
    assert torch.equal(got[1, :alone.shape[1]], alone[0])     # the padded source decodes as it does alone


def test_t5_source_padding_matters_without_the_mask(t5_pair):  # noqa: F811
    """What makes the test above mean something: the padded source's scores depend on the mask."""
    _, ours, _ = t5_pair
    start = torch.zeros(2, 1, dtype=torch.long)
    with torch.no_grad():
        masked = ours(SOURCES, start, attention_mask=SOURCE_MASK).logits
        alone = ours(SOURCES[1:, :4], start[1:]).logits
        unmasked = ours(SOURCES, start).logits
    torch.testing.assert_close(masked[1], alone[0], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(unmasked[1], alone[0], atol=1e-3)


def _calls(module: torch.nn.Module, counts: dict, name: str):
    return module.register_forward_hook(lambda *_: counts.__setitem__(name, counts.get(name, 0) + 1))


@pytest.mark.parametrize("num_beams", [1, 4])
def test_t5_runs_the_encoder_and_the_cross_attention_projections_once(t5_pair, num_beams):  # noqa: F811
    _, ours, _ = t5_pair
    counts: dict[str, int] = {}
    hooks = [_calls(ours.encoder, counts, "encoder"), _calls(ours.decoder, counts, "decoder")]
    for i, layer in enumerate(ours.decoder.layers):
        hooks += [_calls(layer.cross_attention.k, counts, f"k{i}"), _calls(layer.cross_attention.v, counts, f"v{i}"),
                  _calls(layer.cross_attention.q, counts, f"q{i}")]
    try:
        ours.generate(SOURCES, max_new_tokens=6, num_beams=num_beams, decoder_start_token_id=0)
    finally:
        for hook in hooks:
            hook.remove()
    steps = counts["decoder"]
    assert steps == 6 and counts["encoder"] == 1
    assert all(counts[f"k{i}"] == counts[f"v{i}"] == 1 and counts[f"q{i}"] == steps for i in range(2))


@pytest.mark.slow
def test_t5_at_o2_computes_the_fused_cross_projection_once_and_equals_hf(t5_pair, tmp_path_factory):  # noqa: F811
    """-O2 fuses the cross-attention's k and v into one layer: it runs once, and the ids equal HF's."""
    _, _, reference = t5_pair
    module = compile_to_module(ROOT / "specs" / "t5.dl", tmp_path_factory.mktemp("decode"), T5_SMALL, opt_level=2,
                               name="t5_o2")
    ours = module.T5ForConditionalGeneration().eval()
    ours.load_reference_state_dict(reference.state_dict())
    counts: dict[str, int] = {}
    hooks = [_calls(layer.cross_attention.k_v, counts, f"k_v{i}") for i, layer in enumerate(ours.decoder.layers)]
    try:
        got = _ours(ours, SOURCES, SOURCE_MASK, {"num_beams": 4, "eos_token_id": 1}, decoder_start_token_id=0)
    finally:
        for hook in hooks:
            hook.remove()
    assert counts == {"k_v0": 1, "k_v1": 1}
    assert torch.equal(got, _hf_generate(reference, SOURCES, SOURCE_MASK, {"num_beams": 4, "eos_token_id": 1}))


def test_transformer_runs_its_encoder_layers_once(tmp_path_factory):
    """A `repeat` encoder: each layer computed at the first step only; the ids equal those of
    decoding without the cache (the encoder rerun at every step)."""
    from tests.test_decoding import TRANSFORMER_SMALL
    torch.manual_seed(1)
    module = compile_to_module(ROOT / "specs" / "transformer.dl", tmp_path_factory.mktemp("decode"),
                               TRANSFORMER_SMALL, name="transformer")
    model = module.Transformer().eval()
    counts: dict[str, int] = {}
    hooks = [_calls(layer, counts, f"layer{i}") for i, layer in enumerate(model.encoder)]
    try:
        cached = model.generate(SOURCES, max_new_tokens=5, num_beams=3)
    finally:
        for hook in hooks:
            hook.remove()
    assert counts == {"layer0": 1, "layer1": 1}
    assert torch.equal(cached, model.generate(SOURCES, max_new_tokens=5, num_beams=3, use_cache=False))


def test_logits_to_keep_scores_the_last_positions_only(gpt2_pair, t5_pair):  # noqa: F811
    """HF's `logits_to_keep`, which generate() passes as 1: the last N positions' logits, all at 0."""
    _, gpt2, _ = gpt2_pair
    _, t5, _ = t5_pair
    with torch.no_grad():
        for forward in (lambda **kw: gpt2(PROMPTS, **kw), lambda **kw: t5(SOURCES, PROMPTS, **kw)):
            full = forward().logits
            assert torch.equal(forward(logits_to_keep=0).logits, full)
            torch.testing.assert_close(forward(logits_to_keep=2).logits, full[:, -2:], atol=1e-6, rtol=1e-6)
