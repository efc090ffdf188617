"""HuggingFace's calling conventions on generated models (codegen/interface.py):

- attention masks as tokenizers return them (int64 0/1) and as float 0/1 give exactly the
  outputs of bool masks, and HF's outputs for the same int mask, at -O0, -O1 and -O2 (SDPA);
- a model with several outputs returns a NamedTuple named after it, which indexes, unpacks
  and goes through torch.export like a tuple;
- heads take optional `labels` and return HF's loss on the same weights (-100 ignored,
  shifted inside for causal LMs), None without labels.

Small configurations built from configs (no downloads), fp32, eval mode, eager reference attention.
"""
from __future__ import annotations

import typing

import pytest
import torch

from compiler.driver import compile_spec
from tests.helpers import ROOT, compile_to_module
from tests.small_configs import BERT, GPT2, LLAMA, T5, bert_config, gpt2_config, t5_config
from tests.lazy_import import lazy_import

transformers = lazy_import("transformers")

from generated import bert, gpt2, llama, t5

ATOL, RTOL = 1e-5, 1e-4


def loaded(ours: torch.nn.Module, reference: torch.nn.Module) -> torch.nn.Module:
    ours.load_reference_state_dict(reference.state_dict())
    return ours.eval()


def padded_batch(vocab: int, batch: int = 3, length: int = 9, seed: int = 1):
    """Ids and an int64 0/1 mask, as a tokenizer returns them: right padding, every row keeps a real token."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, vocab, (batch, length), generator=g)
    mask = torch.ones(batch, length, dtype=torch.long)
    mask[1, length - 3:] = 0
    mask[2, 2:] = 0
    return ids.masked_fill(mask == 0, 0), mask


# ------------------------------------------------------------------ masks
def _compiled(spec: str, level: int, tmp_path_factory, overrides: dict, cache: dict = {}):   # noqa: B006
    """The spec at -O`level` with the small configuration's defaults (cached: a compile takes seconds)."""
    key = (spec, level)
    if key not in cache:
        cache[key] = compile_to_module(ROOT / "specs" / f"{spec}.dl", tmp_path_factory.mktemp(f"{spec}{level}"),
                                       overrides, opt_level=level, name=f"{spec}_mask_o{level}")
    return cache[key]


MASK_CASES = {
    # name: (spec, small overrides, our class, reference, our call, reference output field)
    "bert": ("bert", BERT, "BertModel", lambda: transformers.BertModel(bert_config()),
             lambda m, ids, mask: m(ids, mask), "last_hidden_state"),
    "gpt2": ("gpt2", GPT2, "GPT2Model", lambda: transformers.GPT2Model(gpt2_config()),
             lambda m, ids, mask: (m(ids, mask),), "last_hidden_state"),
    "t5": ("t5", {**T5, "head": "lm"}, "T5Model", lambda: transformers.T5ForConditionalGeneration(t5_config()),
           lambda m, ids, mask: m(ids, ids[:, :5], mask, mask[:, :5]), "logits"),
}


def _reference_call(reference, name: str, ids, mask):
    if name == "t5":
        return reference(input_ids=ids, attention_mask=mask, decoder_input_ids=ids[:, :5],
                         decoder_attention_mask=mask[:, :5])
    return reference(input_ids=ids, attention_mask=mask)


@pytest.mark.parametrize("level", [0, 1, 2])
@pytest.mark.parametrize("name", list(MASK_CASES))
def test_int_and_float_masks_equal_bool_masks_and_hf(tmp_path_factory, name, level):
    spec, overrides, cls, build_reference, call, field = MASK_CASES[name]
    module = _compiled(spec, level, tmp_path_factory, overrides)
    torch.manual_seed(0)
    reference = build_reference().eval()
    ours = loaded(getattr(module, cls)(), reference)
    ids, mask = padded_batch(97)
    with torch.no_grad():
        by_bool = call(ours, ids, mask.bool())
        by_int, by_float = call(ours, ids, mask), call(ours, ids, mask.float())
        expected = getattr(_reference_call(reference, name, ids, mask), field)
    for a, b, c in zip(by_bool, by_int, by_float):
        if a is None:
            assert b is None and c is None
            continue
        assert torch.equal(a, b) and torch.equal(a, c)      # exactly: the same bool mask reaches every layer
    got = by_int[0] if field == "last_hidden_state" else by_int.logits
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=RTOL)


def test_a_bool_mask_is_converted_once_where_the_model_begins():
    """The conversion is on the model's entry, not in each layer: bool masks pass through untouched."""
    source = (ROOT / "generated" / "bert.py").read_text()
    # once, in BertModel: the heads pass their mask to the BertModel inside, which converts it
    assert source.count("attention_mask = attention_mask.bool()") == 1
    assert "attention_mask.bool()" in source.split("class BertModel(")[1].split("\nclass ")[0]
    assert ".bool()" not in source.split("class BertModel(")[0]               # the blocks see bool only


def test_an_int_mask_into_an_attention_port_is_a_diagnostic(tmp_path):
    spec = tmp_path / "masked.dl"
    spec.write_text("model M(d: int = 8) {\n    in x: [B, S, d]\n    in mask: [B, S] int64\n"
                    "    out y = Attention(2)(x, x, x, mask)\n}\n")
    result = compile_spec(spec)
    assert not result.ok
    (diagnostic,) = [d for d in result.diagnostics if d.code == "DLC008"]
    assert "must be bool" in diagnostic.message and "int and float 0/1 masks" in diagnostic.hint


# ------------------------------------------------------------------ named outputs
def test_a_model_with_several_outputs_returns_a_named_tuple():
    torch.manual_seed(0)
    model = bert.BertModel(**BERT).eval()
    ids, mask = padded_batch(97)
    with torch.no_grad():
        out = model(ids, mask)
    assert type(out).__name__ == "BertModelOutput" and out._fields == ("last_hidden_state", "pooler_output")
    hidden, pooled = out                                    # unpacking and indexing work as on a tuple
    assert hidden is out.last_hidden_state is out[0] and pooled is out.pooler_output is out[1]
    assert out.last_hidden_state.shape == (3, 9, 32) and out.pooler_output.shape == (3, 32)
    without_pooler = bert.BertModel(**BERT, add_pooler=False).eval()
    without_pooler.load_state_dict(model.state_dict(), strict=False)
    with torch.no_grad():
        plain = without_pooler(ids, mask)
    assert plain.pooler_output is None                      # as HF's BertModel(add_pooling_layer=False)
    torch.testing.assert_close(plain.last_hidden_state, out.last_hidden_state, rtol=0, atol=0)


def test_each_t5_configuration_returns_only_the_fields_it_produces():
    """T5Model without a head returns the decoder states, with its LM head a loss and the logits:
    a type each (as HF's T5Model and T5ForConditionalGeneration), no field that is always None;
    T5Model(head="lm") built at run time returns the head's type, and indexing works as on a tuple."""
    torch.manual_seed(0)
    ids, decoder_ids = torch.randint(0, 97, (2, 6)), torch.randint(0, 97, (2, 5))
    with torch.no_grad():
        base = t5.T5Model(**T5).eval()(ids, decoder_ids)
        head = t5.T5ForConditionalGeneration(**T5).eval()(ids, decoder_ids, labels=decoder_ids)
        built = t5.T5Model(**T5, head="lm").eval()(ids, decoder_ids)
    assert type(base) is t5.T5ModelOutput and base._fields == ("last_hidden_state",)
    assert base[0] is base.last_hidden_state and base.last_hidden_state.shape == (2, 5, 32)
    assert type(head) is t5.T5ForConditionalGenerationOutput and head._fields == ("loss", "logits")
    loss, logits = head
    assert loss.shape == () and logits.shape == (2, 5, 97) and head[1] is logits
    assert type(built) is t5.T5ForConditionalGenerationOutput and built.loss is None
    returns = typing.get_args(typing.get_type_hints(t5.T5Model.forward)["return"])
    assert returns == (t5.T5ModelOutput, t5.T5ForConditionalGenerationOutput)


def test_a_model_with_one_output_returns_the_tensor():
    torch.manual_seed(0)
    out = gpt2.GPT2Model(**GPT2).eval()(torch.randint(0, 97, (2, 5)))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 5, 32)


def test_torch_export_takes_the_named_result():
    torch.manual_seed(0)
    model = bert.BertForSequenceClassification(**BERT).eval()
    ids, mask = padded_batch(97)
    labels = torch.tensor([0, 1, 1])
    exported = torch.export.export(model, (ids, mask), {"labels": labels})
    with torch.no_grad():
        eager = model(ids, mask, labels=labels)
        got = exported.module()(ids, mask, labels=labels)
    assert type(got).__name__ == "BertForSequenceClassificationOutput"
    torch.testing.assert_close(got.logits, eager.logits)
    torch.testing.assert_close(got.loss, eager.loss)


# ------------------------------------------------------------------ labels -> loss
def _labels(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    labels = ids.masked_fill(mask == 0, -100)                # no loss at padding, HF's convention
    labels[0, :2] = -100
    return labels


LOSS_CASES = {
    "BertForMaskedLM": (lambda: bert.BertForMaskedLM(**BERT), lambda: transformers.BertForMaskedLM(bert_config()),
                        lambda ids, mask: {"labels": _labels(ids, mask)}),
    "BertForSequenceClassification": (
        lambda: bert.BertForSequenceClassification(**BERT, num_labels=3),
        lambda: transformers.BertForSequenceClassification(bert_config(num_labels=3)),
        lambda ids, mask: {"labels": torch.tensor([2, 0, 1])}),
    "GPT2LMHeadModel": (lambda: gpt2.GPT2LMHeadModel(**GPT2), lambda: transformers.GPT2LMHeadModel(gpt2_config()),
                        lambda ids, mask: {"labels": _labels(ids, mask)}),
    "T5ForConditionalGeneration": (
        lambda: t5.T5ForConditionalGeneration(**T5),
        lambda: transformers.T5ForConditionalGeneration(t5_config()),
        lambda ids, mask: {"decoder_input_ids": ids[:, :6], "labels": _labels(ids[:, 1:7], mask[:, 1:7])}),
    "LlamaForCausalLM": (
        lambda: llama.LlamaForCausalLM(**LLAMA),
        lambda: transformers.LlamaForCausalLM(transformers.LlamaConfig(**LLAMA, attn_implementation="eager")),
        lambda ids, mask: {"labels": _labels(ids, mask)}),
}


@pytest.mark.parametrize("name", list(LOSS_CASES))
def test_the_loss_equals_hf_on_the_same_weights(name):
    build, build_reference, extra = LOSS_CASES[name]
    torch.manual_seed(0)
    reference = build_reference().eval()
    ours = loaded(build(), reference)
    ids, mask = padded_batch(97)
    kwargs = {"input_ids": ids, "attention_mask": mask, **extra(ids, mask)}
    with torch.no_grad():
        expected, got = reference(**kwargs), ours(**kwargs)
        kwargs.pop("labels")
        unlabelled = ours(**kwargs)
    assert got._fields[:2] == ("loss", "logits") and got.loss.shape == ()
    torch.testing.assert_close(got.loss, expected.loss, atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(got.logits, expected.logits, atol=ATOL, rtol=RTOL)
    assert unlabelled.loss is None                          # no labels, no loss
    torch.testing.assert_close(unlabelled.logits, got.logits, rtol=0, atol=0)


def test_t5_without_the_lm_head_takes_labels_without_a_warning():
    """`labels` serves only T5Model(head="lm"); the configurations without the head do not warn about it."""
    result = compile_spec(ROOT / "specs" / "t5.dl")
    assert result.ok and not [d for d in result.diagnostics if d.code == "DLC020"]


def test_torch_jit_trace_takes_a_named_result_without_none():
    """jit.trace returns the fields as a plain tuple; it cannot trace a None (a loss without labels)."""
    torch.manual_seed(0)
    model = bert.BertModel(**BERT).eval()
    ids, mask = padded_batch(97)
    traced = torch.jit.trace(model, (ids, mask))
    with torch.no_grad():
        hidden, pooled = traced(ids, mask)
        eager = model(ids, mask)
    torch.testing.assert_close(hidden, eager.last_hidden_state)
    torch.testing.assert_close(pooled, eager.pooler_output)
