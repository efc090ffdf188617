"""T5 (specs/t5.dl) weight for weight against HuggingFace transformers' T5Model and
T5ForConditionalGeneration: t5-small configuration, random initialisation (no
downloads), eager attention, fp32, eval mode."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.helpers import ROOT, compile_to_module, rename_reference_keys
from tests.lazy_import import lazy_import

transformers = lazy_import("transformers")

SPEC = ROOT / "specs" / "t5.dl"
T5_SMALL_PARAMETERS = 60_506_624          # transformers.T5Model(T5Config()), embeddings counted once
NAMES = ["T5Model", "T5ForConditionalGeneration"]
VOCAB = 32128
SMALL = {"vocab": 97, "d_model": 32, "d_kv": 8, "d_ff": 64, "layers": 2, "heads": 4, "num_buckets": 8,
         "max_distance": 16}


@pytest.fixture(scope="module")
def t5(tmp_path_factory):
    return compile_to_module(SPEC, tmp_path_factory.mktemp("t5"), name="t5")


@pytest.fixture(scope="module")
def models(t5):
    """name -> (ours, reference); ours is freshly initialised, not yet loaded."""
    torch.manual_seed(0)
    config = transformers.T5Config(attn_implementation="eager")
    pairs = {}
    for name in NAMES:
        reference = getattr(transformers, name)(config).eval()
        pairs[name] = (getattr(t5, name)().eval(), reference)
    return pairs


def our_key(t5, model, reference_key: str) -> str:
    """The name a reference checkpoint key gets under the REFERENCE_RENAMES of the model's blocks."""
    (key,) = rename_reference_keys(model, {reference_key: None})
    return key


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())      # tied parameters once


# ------------------------------------------------------------------ structure
@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_and_every_shape_match_the_reference(t5, models, name):
    ours, reference = models[name]
    assert parameter_count(ours) == parameter_count(reference) == T5_SMALL_PARAMETERS
    ours_shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    reference_shapes = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    renamed = {our_key(t5, ours, k): shape for k, shape in reference_shapes.items()}
    assert renamed == ours_shapes
    for key, shape in reference_shapes.items():
        assert ours_shapes[our_key(t5, ours, key)] == shape, key
    assert sorted(tuple(p.shape) for p in ours.parameters()) == sorted(tuple(p.shape) for p in reference.parameters())


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_reference_checkpoint_loads_strictly_and_every_tensor_lands(t5, models, name):
    ours, reference = models[name]
    checkpoint = reference.state_dict()
    result = ours.load_reference_state_dict(checkpoint)          # strict: raises on a missing or unknown key
    assert not result.missing_keys and not result.unexpected_keys
    loaded = ours.state_dict()
    # The reference's shared, encoder.embed_tokens, decoder.embed_tokens (and lm_head) all
    # name one tied matrix, our `shared`; each must equal what landed there.
    for key, tensor in checkpoint.items():
        assert torch.equal(loaded[our_key(t5, ours, key)], tensor), key
    if name == "T5ForConditionalGeneration":
        assert ours.lm_head.weight is ours.shared.weight        # loading keeps the tie


# ------------------------------------------------------------------ numerics
def padded_batch(generator: torch.Generator, lengths: list[int], vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids right-padded with T5's pad id 0, and the mask (True at real tokens)."""
    ids = torch.randint(1, vocab, (len(lengths), max(lengths)), generator=generator)
    mask = torch.arange(max(lengths))[None, :] < torch.tensor(lengths)[:, None]
    return ids.masked_fill(~mask, 0), mask


@pytest.mark.slow
@pytest.mark.parametrize("decoder_padding", [False, True], ids=["causal", "causal+padding"])
@pytest.mark.parametrize("name", NAMES)
def test_outputs_match_the_reference(models, name, decoder_padding):
    ours, reference = models[name]
    ours.load_reference_state_dict(reference.state_dict())
    g = torch.Generator().manual_seed(1)
    # 37 and 23 tokens: offsets past the exact buckets (8 each way encoder-side, 16 decoder-side),
    # so the logarithmic buckets are exercised too.
    input_ids, attention_mask = padded_batch(g, [37, 30, 12], VOCAB)
    decoder_input_ids, decoder_mask = padded_batch(g, [23, 23, 9], VOCAB)
    decoder_mask = decoder_mask if decoder_padding else None
    with torch.no_grad():
        expected = reference(input_ids=input_ids, attention_mask=attention_mask.long(),
                             decoder_input_ids=decoder_input_ids,
                             decoder_attention_mask=None if decoder_mask is None else decoder_mask.long())
        actual = ours(input_ids, decoder_input_ids, attention_mask, decoder_mask)
    field = "logits" if name == "T5ForConditionalGeneration" else "last_hidden_state"
    actual, expected = getattr(actual, field), getattr(expected, field)
    # Every position is compared, padded ones included: a padded query still attends to
    # unpadded keys in both implementations, so its output is well defined and equal.
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_fused_attention_outputs_match_the_reference(tmp_path, models, name):
    fused = compile_to_module(SPEC, tmp_path, opt_level=2, name="t5_fused")
    _, reference = models[name]
    ours = getattr(fused, name)().eval()
    ours.load_reference_state_dict(reference.state_dict())
    g = torch.Generator().manual_seed(1)
    input_ids, attention_mask = padded_batch(g, [37, 30, 12], VOCAB)
    decoder_input_ids, decoder_mask = padded_batch(g, [23, 23, 9], VOCAB)
    with torch.no_grad():
        expected = reference(input_ids=input_ids, attention_mask=attention_mask.long(),
                             decoder_input_ids=decoder_input_ids, decoder_attention_mask=decoder_mask.long())
        actual = ours(input_ids, decoder_input_ids, attention_mask, decoder_mask)
    field = "logits" if name == "T5ForConditionalGeneration" else "last_hidden_state"
    actual, expected = getattr(actual, field), getattr(expected, field)
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("num_buckets, max_distance", [(32, 128), (8, 16), (33, 50)])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_position_buckets_match_the_reference(t5, num_buckets, max_distance, bidirectional):
    from transformers.models.t5.modeling_t5 import T5Attention
    offsets = torch.arange(-300, 301)[None, :]
    bias = t5.RelativePositionBias(num_buckets, max_distance, 2, bidirectional)
    expected = T5Attention._relative_position_bucket(offsets, bidirectional, num_buckets, max_distance)
    assert torch.equal(bias.bucket(offsets), expected)


# ------------------------------------------------------------------ training
def test_a_few_optimizer_steps_lower_the_loss(tmp_path):
    # Overrides reach the models a file defines, not `model X = Y(...)` aliases, so the
    # small conditional-generation network is T5Model with head="lm".
    module = compile_to_module(SPEC, tmp_path, overrides={**SMALL, "head": "lm"}, name="t5_train")
    torch.manual_seed(0)
    model = module.T5Model().train()
    assert model.lm_head.weight is model.shared.weight
    g = torch.Generator().manual_seed(2)
    input_ids, attention_mask = padded_batch(g, [11, 7, 9, 4], SMALL["vocab"])
    labels, _ = padded_batch(g, [6, 6, 6, 6], SMALL["vocab"])
    decoder_input_ids = F.pad(labels[:, :-1], (1, 0))             # shifted right, starting with pad id 0
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(10):
        loss, logits = model(input_ids, decoder_input_ids, attention_mask, labels=labels)
        assert logits.shape == (4, 6, SMALL["vocab"])
        torch.testing.assert_close(loss, F.cross_entropy(logits.flatten(0, 1), labels.flatten()))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses
