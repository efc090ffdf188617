"""Llama (specs/llama.dl) weight for weight against HuggingFace transformers: LlamaModel and
LlamaForCausalLM on small configurations with grouped-query attention (fewer key/value heads
than query heads), multi-query attention and plain multi-head attention, with and without
padding and position ids; the default LlamaConfig's parameter count; a few training steps.
Random initialisation, eager attention, fp32, eval mode."""
from __future__ import annotations

import pytest
import torch

from tests.helpers import ROOT, compile_to_module
from tests.lazy_import import lazy_import

transformers = lazy_import("transformers")

ATOL, RTOL = 1e-5, 1e-4
SMALL = {"vocab_size": 101, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2}
CONFIGS = {
    "gqa": SMALL,
    "mqa": {**SMALL, "num_key_value_heads": 1, "rope_theta": 500000.0},
    "mha": {**SMALL, "num_key_value_heads": 4, "rms_norm_eps": 1e-5},
}


def reference_config(overrides: dict) -> "transformers.LlamaConfig":
    return transformers.LlamaConfig(**overrides, attn_implementation="eager")


@pytest.fixture(scope="module", params=list(CONFIGS))
def compiled(request, tmp_path_factory):
    overrides = CONFIGS[request.param]
    module = compile_to_module(ROOT / "specs" / "llama.dl", tmp_path_factory.mktemp("llama"), overrides,
                               name=f"llama_{request.param}")
    return overrides, module


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def pair(compiled, name: str):
    overrides, module = compiled
    torch.manual_seed(0)
    reference = getattr(transformers, name)(reference_config(overrides)).eval()
    ours = getattr(module, name)().eval()
    with torch.no_grad():
        for parameter in ours.parameters():
            parameter.zero_()                   # so that a tensor that does not load is caught
    result = ours.load_reference_state_dict(reference.state_dict())      # strict
    assert not result.missing_keys and not result.unexpected_keys
    return reference, ours


def inputs(padded: bool):
    torch.manual_seed(1)
    ids = torch.randint(0, 101, (3, 11))
    mask = torch.ones(3, 11, dtype=torch.bool)
    if padded:
        mask[1, 7:] = False
        mask[2, 3:] = False
    return ids, mask


@pytest.mark.parametrize("name", ["LlamaModel", "LlamaForCausalLM"])
def test_parameters_and_checkpoint(compiled, name):
    reference, ours = pair(compiled, name)
    assert parameter_count(ours) == parameter_count(reference)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k.replace("model.", "decoder.", 1) if name == "LlamaForCausalLM" else k: v.shape
        for k, v in reference.state_dict().items()}
    for key, tensor in reference.state_dict().items():
        ours_key = key.replace("model.", "decoder.", 1) if name == "LlamaForCausalLM" else key
        assert torch.equal(ours.state_dict()[ours_key], tensor), key


@pytest.mark.parametrize("padded", [False, True])
def test_last_hidden_state_matches(compiled, padded):
    reference, ours = pair(compiled, "LlamaModel")
    ids, mask = inputs(padded)
    with torch.no_grad():
        expected = reference(input_ids=ids, attention_mask=mask.long() if padded else None).last_hidden_state
        actual = ours(ids, mask if padded else None)
    real = mask[..., None].expand_as(expected)         # padded positions are free to differ
    torch.testing.assert_close(actual[real], expected[real], atol=ATOL, rtol=RTOL)


def test_logits_match_with_position_ids(compiled):
    reference, ours = pair(compiled, "LlamaForCausalLM")
    ids, mask = inputs(False)
    positions = torch.arange(5, 16)[None].expand(3, -1)       # a continuation: positions 5..15
    with torch.no_grad():
        expected = reference(input_ids=ids, position_ids=positions).logits
        actual = ours(ids, None, positions).logits
    torch.testing.assert_close(actual, expected, atol=ATOL, rtol=RTOL)


def test_tied_head_and_scaled_rope(tmp_path):
    overrides = {**SMALL, "tie_word_embeddings": True, "rope_scaling": 4.0}
    module = compile_to_module(ROOT / "specs" / "llama.dl", tmp_path, overrides, name="llama_tied")
    torch.manual_seed(0)
    config = {**SMALL, "tie_word_embeddings": True, "rope_scaling": {"rope_type": "linear", "factor": 4.0}}
    reference = transformers.LlamaForCausalLM(reference_config(config)).eval()
    ours = module.LlamaForCausalLM().eval()
    ours.load_reference_state_dict(reference.state_dict())
    assert ours.lm_head.weight is ours.decoder.embed_tokens.weight
    assert parameter_count(ours) == parameter_count(reference)
    ids, _ = inputs(False)
    with torch.no_grad():
        torch.testing.assert_close(ours(ids).logits, reference(input_ids=ids).logits, atol=ATOL, rtol=RTOL)


def test_default_configuration_parameter_count():
    from generated import llama
    with torch.device("meta"):
        reference = transformers.LlamaModel(transformers.LlamaConfig())
        ours = llama.LlamaModel()
    d, ff, layers, vocab = 4096, 11008, 32, 32000
    per_layer = 4 * d * d + 3 * d * ff + 2 * d          # q, k, v, o; gate, up, down; two RMSNorms
    assert parameter_count(ours) == parameter_count(reference) == vocab * d + layers * per_layer + d == 6_607_343_616


def test_training_lowers_the_loss(compiled):
    overrides, module = compiled
    torch.manual_seed(0)
    model = module.LlamaForCausalLM().train()
    ids, _ = inputs(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        loss = model(ids, labels=ids).loss          # shifted inside, as HF's
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


@pytest.mark.slow          # six full decodes, half a minute each on a shared CPU
@pytest.mark.parametrize("num_beams", [1, 3])
def test_decoding_matches_hf_generate(compiled, num_beams):
    """Greedy and beam search through dlc's decoding runtime give HF generate's ids.  Each step
    recomputes the whole prefix: the generated Llama keeps no KV cache yet."""
    generation = pytest.importorskip("dlc.runtime.generation")
    reference, ours = pair(compiled, "LlamaForCausalLM")
    ids = torch.randint(0, 101, (2, 5), generator=torch.Generator().manual_seed(3))
    expected = reference.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=6, num_beams=num_beams,
                                  do_sample=False, eos_token_id=None, pad_token_id=0)
    search = generation.Search(max_new_tokens=6, num_beams=num_beams, pad_token_id=0)
    got = generation.generate(lambda sequences: ours(sequences).logits[:, -1], ids, search)
    assert torch.equal(got, expected)


@pytest.mark.parametrize("kv_heads", [2, 1])
def test_a_class_compiled_with_as_many_kv_heads_as_heads_builds_grouped_query_attention(kv_heads):
    """generated/llama.py was compiled with num_key_value_heads == num_attention_heads; built with
    fewer key/value heads it repeats them as HF's repeat_kv does, in forward and in generate()."""
    from generated import llama
    config = {**SMALL, "num_key_value_heads": kv_heads}
    torch.manual_seed(0)
    reference = transformers.LlamaForCausalLM(reference_config(config)).eval()
    ours = llama.LlamaForCausalLM(**config).eval()
    result = ours.load_reference_state_dict(reference.state_dict())      # strict
    assert not result.missing_keys and not result.unexpected_keys
    ids, mask = inputs(padded=True)
    with torch.no_grad():
        torch.testing.assert_close(ours(ids, mask).logits, reference(input_ids=ids, attention_mask=mask).logits,
                                   atol=1e-5, rtol=0)
        expected = reference.generate(ids[:1], max_new_tokens=4, do_sample=False, pad_token_id=0)
        assert torch.equal(ours.generate(ids[:1], max_new_tokens=4), expected)
