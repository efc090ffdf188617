"""Decoding (dlc/runtime/generation.py) against HuggingFace `generate` on the same
weights: greedy and beam search give the same ids for GPT-2 and T5; sampling is
reproducible with a generator and respects top-k/top-p."""
from __future__ import annotations

import pytest
import torch

from tests.helpers import ROOT, compile_to_module
from tests.lazy_import import lazy_import

transformers = lazy_import("transformers")
generation = pytest.importorskip("dlc.runtime.generation")

VOCAB = 61
GPT2_SMALL = {"vocab": VOCAB, "positions": 64, "d_model": 32, "layers": 2, "heads": 4, "dropout": 0.0}
T5_SMALL = {"vocab": VOCAB, "d_model": 32, "d_kv": 8, "d_ff": 64, "layers": 2, "heads": 4, "dropout": 0.0}


@pytest.fixture(scope="module")
def gpt2_pair(tmp_path_factory):
    torch.manual_seed(0)
    module = compile_to_module(ROOT / "specs" / "gpt2.dl", tmp_path_factory.mktemp("gen"), GPT2_SMALL, name="gpt2_gen")
    config = transformers.GPT2Config(vocab_size=VOCAB, n_positions=64, n_embd=32, n_layer=2, n_head=4,
                                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    reference = transformers.GPT2LMHeadModel(config).eval()
    ours = module.GPT2LMHeadModel().eval()
    ours.load_reference_state_dict(reference.state_dict())
    return ours, reference


def _last_logits(model):
    def step(sequences):
        return model(sequences).logits[:, -1]
    return step


def _hf(reference, ids, **kwargs):
    kwargs.setdefault("pad_token_id", kwargs.get("eos_token_id", 0))
    return reference.generate(ids, attention_mask=torch.ones_like(ids), **kwargs)


PROMPTS = [torch.randint(0, VOCAB, (3, 5), generator=torch.Generator().manual_seed(s)) for s in range(3)]


@pytest.mark.parametrize("prompt", range(3))
@pytest.mark.parametrize("eos", [None, 7, 23])
def test_greedy_ids_equal_hf_for_gpt2(gpt2_pair, prompt, eos):
    ours, reference = gpt2_pair
    ids = PROMPTS[prompt]
    search = generation.Search(max_new_tokens=12, eos_token_id=eos, pad_token_id=eos)
    expected = _hf(reference, ids, max_new_tokens=12, do_sample=False, eos_token_id=eos)
    assert torch.equal(generation.generate(_last_logits(ours), ids, search), expected)


@pytest.mark.parametrize("prompt", range(3))
@pytest.mark.parametrize("eos, length_penalty", [(None, 1.0), (7, 1.0), (23, 0.0), (5, 2.0)])
def test_beam_search_ids_equal_hf_for_gpt2(gpt2_pair, prompt, eos, length_penalty):
    ours, reference = gpt2_pair
    ids = PROMPTS[prompt]
    search = generation.Search(max_new_tokens=10, num_beams=4, eos_token_id=eos, pad_token_id=eos,
                               length_penalty=length_penalty)
    expected = _hf(reference, ids, max_new_tokens=10, do_sample=False, num_beams=4, eos_token_id=eos,
                   length_penalty=length_penalty)
    assert torch.equal(generation.generate(_last_logits(ours), ids, search), expected)


def test_an_end_token_that_every_beam_prefers_ends_the_search_early(gpt2_pair):
    ours, reference = gpt2_pair
    ids = PROMPTS[0]
    eos = int(_last_logits(ours)(ids).argmax(-1)[0])       # the first prompt's most likely next token
    search = generation.Search(max_new_tokens=10, num_beams=3, eos_token_id=eos, pad_token_id=eos)
    got = generation.generate(_last_logits(ours), ids, search)
    expected = _hf(reference, ids, max_new_tokens=10, num_beams=3, eos_token_id=eos)
    assert torch.equal(got, expected)


def test_sampling_is_reproducible_and_respects_top_k(gpt2_pair):
    ours, _ = gpt2_pair
    ids = PROMPTS[1]
    search = generation.Search(max_new_tokens=15, do_sample=True, top_k=1, temperature=0.7)
    # top_k=1 leaves one token: sampling is greedy
    greedy = generation.generate(_last_logits(ours), ids, generation.Search(max_new_tokens=15))
    assert torch.equal(generation.generate(_last_logits(ours), ids, search), greedy)
    wide = generation.Search(max_new_tokens=15, do_sample=True, top_k=0, top_p=0.9)
    first = generation.generate(_last_logits(ours), ids, wide, torch.Generator().manual_seed(5))
    again = generation.generate(_last_logits(ours), ids, wide, torch.Generator().manual_seed(5))
    assert torch.equal(first, again) and first.shape == (3, 20)


def test_top_p_keeps_the_smallest_set_reaching_p():
    scores = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = generation.warp(scores, generation.Search(top_k=0, top_p=0.8)).isfinite()
    assert kept.tolist() == [[True, True, False, False]]
    kept = generation.warp(scores, generation.Search(top_k=0, top_p=0.81)).isfinite()
    assert kept.tolist() == [[True, True, True, False]]


@pytest.fixture(scope="module")
def t5_pair(tmp_path_factory):
    torch.manual_seed(0)
    module = compile_to_module(ROOT / "specs" / "t5.dl", tmp_path_factory.mktemp("gen_t5"), T5_SMALL, name="t5_gen")
    config = transformers.T5Config(vocab_size=VOCAB, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                                   dropout_rate=0.0, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    reference = transformers.T5ForConditionalGeneration(config).eval()
    ours = module.T5ForConditionalGeneration().eval()
    ours.load_reference_state_dict(reference.state_dict())
    return ours, reference


@pytest.mark.parametrize("num_beams", [1, 4])
def test_t5_decoding_equals_hf(t5_pair, num_beams):
    ours, reference = t5_pair
    source = PROMPTS[2]

    def step(decoded):
        return ours(source.repeat_interleave(len(decoded) // len(source), 0), decoded).logits[:, -1]

    start = torch.zeros(len(source), 1, dtype=torch.long)
    search = generation.Search(max_new_tokens=9, num_beams=num_beams, eos_token_id=1, pad_token_id=0)
    expected = reference.generate(source, max_new_tokens=9, num_beams=num_beams, do_sample=False)
    assert torch.equal(generation.generate(step, start, search), expected)
