"""Incremental decoding in generated models: the key/value cache (`past_key_values`) gives the
full forward's logits at every step, and `model.generate()` (with the cache) equals HF's
`generate` token for token on the same weights, for GPT-2 and T5, greedy and beam search."""
from __future__ import annotations

import pytest
import torch

from tests.helpers import ROOT, compile_to_module
from tests.lazy_import import lazy_import

transformers = lazy_import("transformers")

VOCAB = 61
GPT2_SMALL = {"vocab": VOCAB, "positions": 64, "d_model": 32, "layers": 2, "heads": 4, "dropout": 0.0}
T5_SMALL = {"vocab": VOCAB, "d_model": 32, "d_kv": 8, "d_ff": 64, "layers": 2, "heads": 4, "dropout": 0.0}
TRANSFORMER_SMALL = {"vocab": VOCAB, "d_model": 32, "heads": 4, "d_ff": 64, "layers": 2, "dropout": 0.0}
LLAMA_SMALL = {"vocab_size": VOCAB, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
               "num_attention_heads": 4, "num_key_value_heads": 2}
# The first prompt runs in the fast lane, the others in the slow one (HF's generate is slow to call).
SWEEP = [0, pytest.param(1, marks=pytest.mark.slow), pytest.param(2, marks=pytest.mark.slow)]
PROMPTS = [torch.randint(0, VOCAB, (3, 5), generator=torch.Generator().manual_seed(s)) for s in range(3)]


def _compiled(tmp_path_factory, spec: str, overrides: dict, opt_level: int = 1):
    return compile_to_module(ROOT / "specs" / spec, tmp_path_factory.mktemp("decode"), overrides,
                             opt_level=opt_level, name=spec.removesuffix(".dl"))


@pytest.fixture(scope="module")
def gpt2_pair(tmp_path_factory):
    torch.manual_seed(0)
    module = _compiled(tmp_path_factory, "gpt2.dl", GPT2_SMALL)
    config = transformers.GPT2Config(vocab_size=VOCAB, n_positions=64, n_embd=32, n_layer=2, n_head=4,
                                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    reference = transformers.GPT2LMHeadModel(config).eval()
    ours = module.GPT2LMHeadModel().eval()
    ours.load_reference_state_dict(reference.state_dict())
    return module, ours, reference


@pytest.fixture(scope="module")
def t5_pair(tmp_path_factory):
    torch.manual_seed(0)
    module = _compiled(tmp_path_factory, "t5.dl", T5_SMALL)
    config = transformers.T5Config(vocab_size=VOCAB, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                                   dropout_rate=0.0, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    reference = transformers.T5ForConditionalGeneration(config).eval()
    ours = module.T5ForConditionalGeneration().eval()
    ours.load_reference_state_dict(reference.state_dict())
    return module, ours, reference


def _incremental_logits(module, forward, tokens: torch.Tensor, prompt: int) -> torch.Tensor:
    """The logits of `tokens` fed through one cache: the prompt at once, then one token a call."""
    cache = module.KVCache()
    steps = [forward(tokens[:, :prompt], cache)]
    steps += [forward(tokens[:, t:t + 1], cache) for t in range(prompt, tokens.shape[1])]
    return torch.cat(steps, dim=1)


def _assert_cached_equals_full(module, forward, tokens: torch.Tensor) -> None:
    full = forward(tokens, None)
    for prompt in (1, 4):
        cached = _incremental_logits(module, forward, tokens, prompt)
        torch.testing.assert_close(cached, full, atol=1e-5, rtol=1e-5)


TOKENS = torch.randint(0, VOCAB, (2, 11), generator=torch.Generator().manual_seed(7))
SOURCE = torch.randint(0, VOCAB, (2, 6), generator=torch.Generator().manual_seed(8))


def test_gpt2_cached_logits_equal_the_full_forward(gpt2_pair):
    module, ours, _ = gpt2_pair
    with torch.no_grad():
        _assert_cached_equals_full(module, lambda x, cache: ours(x, past_key_values=cache).logits, TOKENS)


def test_t5_cached_decoder_logits_equal_the_full_forward(t5_pair):
    module, ours, _ = t5_pair
    with torch.no_grad():
        _assert_cached_equals_full(module, lambda x, cache: ours(SOURCE, x, past_key_values=cache).logits, TOKENS)


@pytest.mark.parametrize("opt_level", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_transformer_cached_logits_equal_the_full_forward(tmp_path_factory, opt_level):
    """The source keeps its positions 0..S-1 while the target's continue after the cache; at -O2
    the fused attention kernel serves the full forward, the explicit form the cached steps."""
    torch.manual_seed(1)
    module = _compiled(tmp_path_factory, "transformer.dl", TRANSFORMER_SMALL, opt_level)
    model = module.Transformer().eval()
    with torch.no_grad():
        _assert_cached_equals_full(module, lambda x, cache: model(SOURCE, x, past_key_values=cache), TOKENS)


def test_llama_cached_logits_equal_the_full_forward_with_grouped_keys(tmp_path_factory):
    """Rotary positions, read inside each layer, continue after that layer's cached keys; the
    cache holds the kv_heads heads, before they are repeated."""
    torch.manual_seed(2)
    module = _compiled(tmp_path_factory, "llama.dl", LLAMA_SMALL)
    model = module.LlamaForCausalLM().eval()
    with torch.no_grad():
        _assert_cached_equals_full(module, lambda x, cache: model(x, past_key_values=cache).logits, TOKENS)
    cache = module.KVCache()
    model(TOKENS, past_key_values=cache)
    assert {keys.shape for keys, _ in cache.layers.values()} == {(2, 2, 11, 8)}


def _hf(reference, ids, **kwargs):
    kwargs.setdefault("pad_token_id", kwargs.get("eos_token_id", 0))
    return reference.generate(ids, attention_mask=torch.ones_like(ids), **kwargs)


@pytest.mark.parametrize("prompt", SWEEP)
@pytest.mark.parametrize("eos", [None, 7])
def test_gpt2_generate_greedy_equals_hf(gpt2_pair, prompt, eos):
    _, ours, reference = gpt2_pair
    ids = PROMPTS[prompt]
    got = ours.generate(ids, max_new_tokens=12, eos_token_id=eos, pad_token_id=eos)
    assert torch.equal(got, _hf(reference, ids, max_new_tokens=12, do_sample=False, eos_token_id=eos))


@pytest.mark.parametrize("prompt", SWEEP)
@pytest.mark.parametrize("eos, length_penalty", [(7, 1.0), pytest.param(None, 1.0, marks=pytest.mark.slow),
                                                 pytest.param(23, 0.0, marks=pytest.mark.slow),
                                                 pytest.param(5, 2.0, marks=pytest.mark.slow)])
def test_gpt2_generate_beam_search_equals_hf(gpt2_pair, prompt, eos, length_penalty):
    _, ours, reference = gpt2_pair
    ids = PROMPTS[prompt]
    got = ours.generate(ids, max_new_tokens=10, num_beams=4, eos_token_id=eos, pad_token_id=eos,
                        length_penalty=length_penalty)
    expected = _hf(reference, ids, max_new_tokens=10, do_sample=False, num_beams=4, eos_token_id=eos,
                   length_penalty=length_penalty)
    assert torch.equal(got, expected)


def test_gpt2_generate_with_and_without_the_cache_agree(gpt2_pair):
    _, ours, _ = gpt2_pair
    for kwargs in ({}, {"num_beams": 3, "eos_token_id": 7}):
        assert torch.equal(ours.generate(PROMPTS[1], max_new_tokens=9, **kwargs),
                           ours.generate(PROMPTS[1], max_new_tokens=9, use_cache=False, **kwargs))


def test_gpt2_sampling_is_reproducible_with_a_generator(gpt2_pair):
    _, ours, _ = gpt2_pair
    kwargs = {"max_new_tokens": 15, "do_sample": True, "top_k": 0, "top_p": 0.9, "temperature": 0.8}
    first = ours.generate(PROMPTS[0], generator=torch.Generator().manual_seed(3), **kwargs)
    again = ours.generate(PROMPTS[0], generator=torch.Generator().manual_seed(3), **kwargs)
    assert torch.equal(first, again) and first.shape == (3, 20)
    greedy = ours.generate(PROMPTS[0], max_new_tokens=15)
    assert torch.equal(ours.generate(PROMPTS[0], max_new_tokens=15, do_sample=True, top_k=1), greedy)


@pytest.mark.parametrize("num_beams", [1, 4])
@pytest.mark.parametrize("prompt", SWEEP)
def test_t5_generate_equals_hf(t5_pair, num_beams, prompt):
    _, ours, reference = t5_pair
    source = PROMPTS[prompt]
    expected = reference.generate(source, max_new_tokens=9, num_beams=num_beams, do_sample=False)
    got = ours.generate(source, max_new_tokens=9, num_beams=num_beams, eos_token_id=1, pad_token_id=0,
                        decoder_start_token_id=0)
    assert torch.equal(got, expected)


def test_only_models_with_a_decoder_step_generate():
    from generated import bert, gpt2, t5
    assert hasattr(gpt2.GPT2LMHeadModel, "generate") and hasattr(t5.T5ForConditionalGeneration, "generate")
    assert not hasattr(gpt2.GPT2Model, "generate")          # no logits to decode from
    assert not hasattr(bert.BertModel, "generate")           # no causal attention: no decoder step
    assert "past_key_values" not in str(bert.BertModel.forward.__annotations__)


def test_gpt1_post_norm_decodes_with_the_cache_and_its_logits_second():
    """GPT-1 returns (loss, logits): DECODING reads output 1; cached and full decoding agree."""
    from generated import gpt1
    torch.manual_seed(3)
    model = gpt1.GPT1LMHeadModel(vocab=VOCAB, positions=32, d_model=32, layers=2, heads=4, dropout=0.0).eval()
    assert model.DECODING["logits"] == 1
    with torch.no_grad():
        _assert_cached_equals_full(gpt1, lambda x, cache: model(x, past_key_values=cache)[1], TOKENS)
    assert torch.equal(model.generate(PROMPTS[0], max_new_tokens=6, num_beams=2),
                       model.generate(PROMPTS[0], max_new_tokens=6, num_beams=2, use_cache=False))
