"""BERT (specs/bert.dl) and GPT-2 (specs/gpt2.dl) weight for weight against
HuggingFace transformers: BertModel, BertForMaskedLM, BertForSequenceClassification
(bert-base-uncased configuration), GPT2Model and GPT2LMHeadModel (gpt2 small);
random initialisation (no downloads), eager attention, fp32, eval mode.

The models are the committed generated/ modules, which test_golden keeps in step with
the specs, at full size (the full suite) and built with the constructor arguments of
tests/small_configs.py against references of the same small sizes (the fast lane: names,
ties, masks and numerics do not depend on the sizes); the training checks compile small
configurations.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tests import small_configs
from tests.helpers import ROOT, compile_to_module, rename_reference_keys
from tests.lazy_import import lazy_import

transformers = lazy_import("transformers")

from generated import bert, gpt2

ATOL, RTOL = 1e-5, 1e-4
BERT_BASE_PARAMETERS = 109_482_240       # transformers.BertModel(BertConfig())
GPT2_SMALL_PARAMETERS = 124_439_808      # transformers.GPT2Model(GPT2Config())


# ------------------------------------------------------------------ the models and their references
SIZES = ("full", "small")
# size -> family -> our constructor's arguments
ARGUMENTS = {"full": {"bert": {}, "gpt2": {}}, "small": {"bert": small_configs.BERT, "gpt2": small_configs.GPT2}}


def _bert_reference(name: str, size: str) -> torch.nn.Module:
    config = transformers.BertConfig(attn_implementation="eager") if size == "full" else small_configs.bert_config()
    return getattr(transformers, name)(config)


def _gpt2_reference(name: str, size: str) -> torch.nn.Module:
    config = transformers.GPT2Config(attn_implementation="eager") if size == "full" else small_configs.gpt2_config()
    return getattr(transformers, name)(config)


def _family(name: str) -> str:
    return "bert" if name.startswith("Bert") else "gpt2"


# Built once each; BertModel and GPT2Model are the `bert` and `transformer` inside them:
# the very classes, configured as BertModel(BertConfig()) and GPT2Model(GPT2Config()).
REFERENCES: dict[str, Callable[[str], torch.nn.Module]] = {
    "BertForSequenceClassification": lambda size: _bert_reference("BertForSequenceClassification", size),
    "BertForMaskedLM": lambda size: _bert_reference("BertForMaskedLM", size),
    "GPT2LMHeadModel": lambda size: _gpt2_reference("GPT2LMHeadModel", size),
}


@dataclass(frozen=True)
class Case:
    module: object                                    # the generated module holding the class
    reference: Callable[[Callable], torch.nn.Module]  # built references of one size -> this model's reference
    outputs: Callable[[object], tuple]                # the reference's output object -> our outputs' order


CASES = {
    "BertModel": Case(bert, lambda get: get("BertForSequenceClassification").bert,
                      lambda out: (out.last_hidden_state, out.pooler_output)),
    "BertForMaskedLM": Case(bert, lambda get: get("BertForMaskedLM"), lambda out: (out.loss, out.logits)),
    "BertForSequenceClassification": Case(bert, lambda get: get("BertForSequenceClassification"),
                                          lambda out: (out.loss, out.logits)),
    "GPT2Model": Case(gpt2, lambda get: get("GPT2LMHeadModel").transformer, lambda out: (out.last_hidden_state,)),
    "GPT2LMHeadModel": Case(gpt2, lambda get: get("GPT2LMHeadModel"), lambda out: (out.loss, out.logits)),
}
NAMES = list(CASES)
# (name, size) pairs; the full-size ones keep the names' own ids
PAIRS = [pytest.param((name, size), id=name if size == "full" else f"{name}-{size}") for size in SIZES for name in NAMES]


@pytest.fixture(scope="module")
def references():
    torch.manual_seed(0)
    built: dict[tuple[str, str], torch.nn.Module] = {}

    def get(name: str, size: str) -> torch.nn.Module:
        if (name, size) not in built:
            built[name, size] = REFERENCES[name](size).eval()
        return built[name, size]
    return get


def _ours(module, name: str, size: str) -> torch.nn.Module:
    return getattr(module, name)(**ARGUMENTS[size][_family(name)]).eval()


@pytest.fixture(scope="module", params=PAIRS)
def pair(request, references):
    """(name, size, ours, reference), ours holding the reference's weights."""
    name, size = request.param
    case = CASES[name]
    ours, reference = _ours(case.module, name, size), case.reference(lambda n: references(n, size))
    ours.load_reference_state_dict(reference.state_dict())
    return name, size, ours, reference


def our_key(model: torch.nn.Module, reference_key: str) -> str:
    """The name a reference key gets under the REFERENCE_RENAMES of the model's blocks."""
    rename = rename_reference_keys
    (key,) = rename(model, {reference_key: None})
    return key


def transposed(model: torch.nn.Module) -> set[str]:
    """Our keys whose reference tensor is stored transposed (GPT-2's Conv1D [in, out] layout)."""
    from compiler.ops import REGISTRY
    return {f"{path}.{layer}.{name}" if path else f"{layer}.{name}" for path, module in model.named_modules()
            for layer, op in getattr(module, "LAYER_OPS", ()) if op in REGISTRY
            for name in REGISTRY[op].reference_transposed}


def as_ours(model: torch.nn.Module, key: str, tensor: torch.Tensor) -> torch.Tensor:
    return tensor.t() if our_key(model, key) in transposed(model) else tensor


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())       # tied parameters once


# ------------------------------------------------------------------ (1) structure
def test_parameter_count_and_every_shape_match_the_reference(pair):
    name, size, ours, reference = pair
    assert parameter_count(ours) == parameter_count(reference)
    if name in ("BertModel", "GPT2Model") and size == "full":
        assert parameter_count(ours) == {"BertModel": BERT_BASE_PARAMETERS, "GPT2Model": GPT2_SMALL_PARAMETERS}[name]
    flipped = transposed(ours)
    assert sorted(tuple(p.shape) for p in ours.parameters()) == sorted(
        tuple(p.shape)[::-1] if our_key(ours, k) in flipped else tuple(p.shape) for k, p in reference.named_parameters())
    ours_shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    renamed = {our_key(ours, k): tuple(as_ours(ours, k, v).shape) for k, v in reference.state_dict().items()}
    assert renamed == ours_shapes


# ------------------------------------------------------------------ (2) checkpoints
def test_reference_checkpoint_loads_strictly_and_every_tensor_lands(pair):
    _, _, ours, reference = pair
    with torch.no_grad():
        for parameter in ours.parameters():
            parameter.zero_()                    # so that a tensor that does not load is caught
    checkpoint = reference.state_dict()          # persistent entries only: no position_ids buffers
    result = ours.load_reference_state_dict(checkpoint)      # strict: raises on a missing or unknown key
    assert not result.missing_keys and not result.unexpected_keys
    loaded = ours.state_dict()
    landed: dict[str, list[str]] = {}
    for key, tensor in checkpoint.items():
        assert torch.equal(loaded[our_key(ours, key)], as_ours(ours, key, tensor)), key
        landed.setdefault(our_key(ours, key), []).append(key)
    assert set(landed) == set(loaded)            # every one of our tensors comes from the checkpoint
    # Keys that share a name of ours are one tensor in the reference (tied), never two.
    for keys in landed.values():
        assert len({checkpoint[k].data_ptr() for k in keys}) == 1, keys


def test_loading_keeps_weights_tied(pair):
    name, _, ours, reference = pair
    if name == "BertForMaskedLM":
        assert ours.head.decoder.weight is ours.bert.embeddings.word_embeddings.weight
        # The reference's cls.predictions.bias and cls.predictions.decoder.bias (one tensor).
        torch.testing.assert_close(ours.head.decoder.bias, reference.cls.predictions.bias, rtol=0, atol=0)
    if name == "GPT2LMHeadModel":
        assert ours.lm_head.weight is ours.transformer.token_embeddings.weight


# ------------------------------------------------------------------ (3) numerics
def _bert_inputs(padded: bool, vocab: int) -> tuple[dict, tuple]:
    torch.manual_seed(1)
    ids = torch.randint(1, vocab, (3, 13))
    if not padded:
        return {"input_ids": ids}, (ids,)
    mask = torch.ones(3, 13, dtype=torch.bool)
    mask[1, 9:] = False                         # padded sequences
    mask[2, 4:] = False
    ids = ids.masked_fill(~mask, 0)             # [PAD]
    types = torch.zeros(3, 13, dtype=torch.long)
    types[:, 6:] = 1                            # a second segment
    return {"input_ids": ids, "attention_mask": mask.long(), "token_type_ids": types}, (ids, mask, types)


def _gpt2_inputs(padded: bool, vocab: int) -> tuple[dict, tuple]:
    torch.manual_seed(2)
    ids = torch.randint(0, vocab, (3, 11))
    if not padded:
        return {"input_ids": ids}, (ids,)
    mask = torch.ones(3, 11, dtype=torch.bool)
    mask[1, 7:] = False                         # right padding: every query keeps a real key to attend to
    mask[2, 3:] = False
    return {"input_ids": ids, "attention_mask": mask.long()}, (ids, mask)


@pytest.mark.parametrize("padded", [True, False], ids=["padded", "plain"])
def test_outputs_match_the_reference(pair, padded):
    """Every position is compared, padded ones included: with right padding each query
    still has real keys to attend to, so the reference's states there are well defined
    (and they agree).  `plain` leaves out the mask (and BERT's token_type_ids: zeros)."""
    name, _, ours, reference = pair
    inputs = _bert_inputs if _family(name) == "bert" else _gpt2_inputs
    hf_inputs, our_inputs = inputs(padded, reference.config.vocab_size)
    with torch.no_grad():
        expected = CASES[name].outputs(reference(**hf_inputs))
        actual = ours(*our_inputs)
    actual = actual if isinstance(actual, tuple) else (actual,)
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected):
        if want is None:                        # the loss, without labels
            assert got is None
            continue
        assert got.shape == want.shape and got.dtype == torch.float32
        diff = (got - want).abs().max().item()
        torch.testing.assert_close(got, want, atol=ATOL, rtol=RTOL, msg=f"{name}: max |diff| {diff:.3g}")


@pytest.mark.parametrize("name_and_size", [p for p in PAIRS if p.values[0][0] in ("BertForMaskedLM", "GPT2LMHeadModel")])
def test_fused_attention_build_matches_the_reference(tmp_path, references, name_and_size):
    """-O2 lowers attention to F.scaled_dot_product_attention (through the runtime's
    dropout_attention, since these models have attention dropout); same weights, same outputs."""
    name, size = name_and_size
    spec = _family(name)
    module = compile_to_module(ROOT / "specs" / f"{spec}.dl", tmp_path, opt_level=2, name=f"{spec}_o2")
    assert "dropout_attention(q_heads" in Path(module.__file__).read_text()
    reference = CASES[name].reference(lambda n: references(n, size))
    ours = _ours(module, name, size)
    ours.load_reference_state_dict(reference.state_dict())
    inputs = _bert_inputs if spec == "bert" else _gpt2_inputs
    hf_inputs, our_inputs = inputs(True, reference.config.vocab_size)
    with torch.no_grad():
        expected = reference(**hf_inputs).logits
        torch.testing.assert_close(ours(*our_inputs).logits, expected, atol=ATOL, rtol=RTOL)


# ------------------------------------------------------------------ (4) training, small configurations
SMALL_BERT, SMALL_GPT2 = small_configs.BERT, small_configs.GPT2


def _train(model: torch.nn.Module, loss_fn: Callable[[torch.nn.Module], torch.Tensor], steps: int = 25) -> list[float]:
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(model)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def _bert_batch():
    torch.manual_seed(3)
    ids = torch.randint(1, 97, (4, 12))
    mask = torch.ones(4, 12, dtype=torch.bool)
    mask[1, 8:] = False
    return ids, mask


def test_bert_masked_lm_trains(tmp_path):
    module = compile_to_module(ROOT / "specs" / "bert.dl", tmp_path, overrides=SMALL_BERT, name="bert_small")
    torch.manual_seed(0)
    model = module.BertForMaskedLM()
    ids, mask = _bert_batch()
    targets = torch.randint(1, 97, ids.shape).masked_fill(~mask, -100)
    losses = _train(model, lambda m: F.cross_entropy(m(ids, mask).logits.flatten(0, 1), targets.flatten(),
                                                     ignore_index=-100))
    assert losses[-1] < 0.7 * losses[0], losses
    assert model.head.decoder.weight is model.bert.embeddings.word_embeddings.weight   # still tied


def test_bert_sequence_classification_trains(tmp_path):
    module = compile_to_module(ROOT / "specs" / "bert.dl", tmp_path, overrides=SMALL_BERT, name="bert_small")
    torch.manual_seed(0)
    model = module.BertForSequenceClassification()
    ids, mask = _bert_batch()
    labels = torch.tensor([0, 1, 1, 0])
    losses = _train(model, lambda m: F.cross_entropy(m(ids, mask).logits, labels))
    assert losses[-1] < 0.7 * losses[0], losses


def test_gpt2_language_model_trains(tmp_path):
    module = compile_to_module(ROOT / "specs" / "gpt2.dl", tmp_path, overrides=SMALL_GPT2, name="gpt2_small")
    torch.manual_seed(0)
    model = module.GPT2LMHeadModel()
    torch.manual_seed(4)
    ids = torch.randint(0, 97, (4, 12))
    losses = _train(model, lambda m: F.cross_entropy(m(ids).logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten()))
    assert losses[-1] < 0.7 * losses[0], losses
    assert model.lm_head.weight is model.transformer.token_embeddings.weight


def test_small_configurations_load_small_references(tmp_path):
    """The overrides reach every layer: small references' checkpoints load as the full ones do."""
    ours_bert = compile_to_module(ROOT / "specs" / "bert.dl", tmp_path, overrides=SMALL_BERT, name="bert_small")
    ours_gpt2 = compile_to_module(ROOT / "specs" / "gpt2.dl", tmp_path, overrides=SMALL_GPT2, name="gpt2_small")
    bert_config, gpt2_config = small_configs.bert_config(), small_configs.gpt2_config()
    for ours, reference in ((ours_bert.BertForMaskedLM(), transformers.BertForMaskedLM(bert_config)),
                            (ours_bert.BertModel(), transformers.BertModel(bert_config)),
                            (ours_gpt2.GPT2LMHeadModel(), transformers.GPT2LMHeadModel(gpt2_config))):
        ours.load_reference_state_dict(reference.state_dict())
        assert parameter_count(ours) == parameter_count(reference)
