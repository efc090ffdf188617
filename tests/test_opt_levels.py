"""Every optimization level computes the same function: -O0 and -O2 builds of
each spec, with the same weights and inputs, agree in eval mode (outputs) and in
training mode without dropout (outputs and gradients); an inference build
(`dlc compile -O2 --inference`, with the specs' own dropout rates) agrees with
-O0 in eval mode.

Every model of specs/ is covered in a small configuration (the ResNet and VGG
variants by a depth of each kind of block).  Each spec is compiled once per
configuration and level for the whole module."""
from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch

from tests.helpers import ROOT, compile_to_module

ATOL, RTOL = 1e-5, 1e-4
DROPOUT_PARAMETERS = ("dropout", "attention_dropout")     # left at the specs' defaults in inference builds


def _padding_mask(batch: int, length: int, real: int) -> torch.Tensor:
    """True at real tokens; the second sequence is padded after `real` tokens."""
    mask = torch.ones(batch, length, dtype=torch.bool)
    mask[1, real:] = False
    return mask


def _transformer_inputs():
    src = torch.randint(0, 101, (3, 9))
    tgt = torch.randint(0, 101, (3, 6))
    mask = torch.ones(3, 9, dtype=torch.bool)
    mask[1, 5:] = False
    return [(src, tgt, mask), (src, tgt)]


def _bert_inputs():
    ids, segments = torch.randint(1, 100, (3, 10)), torch.randint(0, 2, (3, 10))
    mask = _padding_mask(3, 10, 6)
    return [(ids, mask, segments), (ids,), (ids, mask)]


def _gpt2_inputs():
    ids = torch.randint(0, 100, (3, 12))
    return [(ids, _padding_mask(3, 12, 7)), (ids,)]


def _t5_inputs():
    src, tgt = torch.randint(0, 100, (3, 9)), torch.randint(0, 100, (3, 7))
    src_mask, tgt_mask = _padding_mask(3, 9, 5), _padding_mask(3, 7, 4)
    return [(src, tgt, src_mask, tgt_mask), (src, tgt), (src, tgt, src_mask)]


def _images(size: int):
    return lambda: [(torch.randn(2, 3, size, size),)]


@dataclass(frozen=True)
class Case:
    spec: str
    model: str
    overrides: dict
    inputs: Callable[[], list[tuple]]       # argument tuples; the first also drives the gradient check
    batch_norm: bool = False                # move the running statistics off 0/1 before comparing in eval
    # Parameters whose gradients are not computed: VGG's two large classifier weights (119M entries)
    # would take most of the file's time.  Gradients still flow through them to everything else.
    frozen: tuple[str, ...] = ()


BERT = {"vocab": 100, "hidden": 64, "layers": 2, "heads": 4, "intermediate": 128, "max_positions": 64,
        "dropout": 0.0, "attention_dropout": 0.0}
GPT2 = {"vocab": 100, "positions": 64, "d_model": 64, "layers": 2, "heads": 4, "dropout": 0.0}
T5 = {"vocab": 100, "d_model": 64, "d_kv": 16, "d_ff": 128, "layers": 2, "heads": 4, "num_buckets": 8,
      "max_distance": 16, "dropout": 0.0}
VISION = {"num_classes": 10}
VGG = {**VISION, "dropout": 0.0}
VGG_CLASSIFIER = ("fc1.weight", "fc2.weight")
LLAMA = {"vocab_size": 100, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "attention_dropout": 0.0}
VIT = {"image_size": 32, "patch_size": 8, "num_layers": 2, "num_heads": 4, "hidden_dim": 64, "mlp_dim": 128,
       "num_classes": 10, "dropout": 0.0, "attention_dropout": 0.0}


SEQ2SEQ = {"source_vocab": 30, "target_vocab": 31, "embed": 16, "hidden": 24}


def _seq2seq_inputs():
    src, tgt = torch.randint(0, 30, (3, 8)), torch.randint(0, 31, (3, 6))
    return [(src, tgt, tgt.roll(-1, 1)), (src, tgt)]


def _llama_inputs():
    ids = torch.randint(0, 100, (3, 12))
    return [(ids, _padding_mask(3, 12, 7)), (ids,), (ids, None, torch.arange(4, 16)[None].expand(3, -1))]

CASES = {
    "transformer": Case("transformer", "Transformer", {"vocab": 101, "d_model": 32, "heads": 4, "d_ff": 64,
                                                       "layers": 2, "dropout": 0.0}, _transformer_inputs),
    "BertModel": Case("bert", "BertModel", BERT, _bert_inputs),
    "BertForMaskedLM": Case("bert", "BertForMaskedLM", BERT, _bert_inputs),
    "BertForSequenceClassification": Case("bert", "BertForSequenceClassification", BERT, _bert_inputs),
    "GPT2Model": Case("gpt2", "GPT2Model", GPT2, _gpt2_inputs),
    "GPT2LMHeadModel": Case("gpt2", "GPT2LMHeadModel", GPT2, _gpt2_inputs),
    "T5Model": Case("t5", "T5Model", T5, _t5_inputs),
    "T5ForConditionalGeneration": Case("t5", "T5ForConditionalGeneration", T5, _t5_inputs),
    "ResNet18": Case("resnet", "ResNet18", VISION, _images(64), batch_norm=True),
    "ResNet50": Case("resnet", "ResNet50", VISION, _images(64), batch_norm=True),        # bottleneck blocks
    "MobileNetV2": Case("mobilenet", "MobileNetV2", {**VISION, "dropout": 0.0}, _images(64), batch_norm=True),
    "MobileNetV1": Case("mobilenet", "MobileNetV1", {**VISION, "dropout": 0.0}, _images(64), batch_norm=True),
    "VGG11": Case("vgg", "VGG11", VGG, _images(32), frozen=VGG_CLASSIFIER),
    "VGG11BN": Case("vgg", "VGG11BN", VGG, _images(32), batch_norm=True, frozen=VGG_CLASSIFIER),
    "LlamaForCausalLM": Case("llama", "LlamaForCausalLM", LLAMA, _llama_inputs),
    "VisionTransformer": Case("vit", "VisionTransformer", VIT, _images(32)),
    "AlexNet": Case("alexnet", "AlexNet", VGG, _images(64), frozen=("fc1.weight", "fc2.weight")),
    "GoogLeNet": Case("googlenet", "GoogLeNet", {**VISION, "dropout": 0.0}, _images(64), batch_norm=True),
    "T5V11ForConditionalGeneration": Case("t5", "T5V11ForConditionalGeneration", T5, _t5_inputs),
    "MobileNetV2x0.5": Case("mobilenet", "MobileNetV2", {**VISION, "dropout": 0.0, "width_mult": 0.5}, _images(64),
                            batch_norm=True),
    "BahdanauSeq2Seq": Case("seq2seq", "BahdanauSeq2Seq", {**SEQ2SEQ, "attention": 20}, _seq2seq_inputs),
    "LuongSeq2Seq": Case("seq2seq", "LuongSeq2Seq", SEQ2SEQ, _seq2seq_inputs),
    "LuongDotSeq2Seq": Case("seq2seq", "LuongDotSeq2Seq", SEQ2SEQ, _seq2seq_inputs),
    "LuongConcatSeq2Seq": Case("seq2seq", "LuongConcatSeq2Seq", SEQ2SEQ, _seq2seq_inputs),
}

# Also compared as inference builds, whose dropout (and attention dropout) the build removes.
INFERENCE = ["transformer", "BertForSequenceClassification", "GPT2LMHeadModel", "T5ForConditionalGeneration",
             "MobileNetV2", "LlamaForCausalLM", "VisionTransformer"]


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """build(case, level, inference=False) -> the generated model class, compiled once per module."""
    folder = tmp_path_factory.mktemp("opt_levels")
    modules = {}

    def get(case: Case, level: int, inference: bool = False):
        overrides = {k: v for k, v in case.overrides.items() if not (inference and k in DROPOUT_PARAMETERS)}
        key = (case.spec, tuple(sorted(overrides.items())), level, inference)
        if key not in modules:
            name = f"{case.spec}_o{level}" + ("_inference" if inference else "")
            modules[key] = compile_to_module(ROOT / "specs" / f"{case.spec}.dl", folder, overrides,
                                             opt_level=level, name=name, inference=inference)
        return getattr(modules[key], case.model)
    return get


def _as_tuple(out):
    return out if isinstance(out, tuple) else (out,)


def _reference(build, case: Case) -> torch.nn.Module:
    """The -O0 model with random weights, in eval mode; batch norms have seen a few batches."""
    torch.manual_seed(0)
    model = build(case, 0)()
    if case.batch_norm:
        model.train()
        with torch.no_grad():
            for _ in range(3):
                model(*(x * 2 + 0.5 for x in case.inputs()[0]))
    return model.eval()


def _loaded(cls, state_dict: dict) -> torch.nn.Module:
    """`cls()` holding `state_dict`'s tensors (through its checkpoint hooks), shared rather than copied:
    VGG's classifier alone has 120M parameters.  Built on the meta device, so nothing is initialised
    twice; tied parameters are tied again after loading, and a model whose state is not all in the
    checkpoint (a non-persistent buffer) is built for real."""
    with torch.device("meta"):
        model = cls()
    first_names: dict[int, str] = {}
    ties = [(name, first_names.setdefault(id(p), name)) for name, p in model.named_parameters(remove_duplicate=False)]
    # A plain dict each time: torch records `assign` in a state_dict's _metadata, for later loads too.
    model.load_state_dict(dict(state_dict), strict=True, assign=True)
    for name, first in ties:
        if name != first:
            owner, _, attr = name.rpartition(".")
            setattr(model.get_submodule(owner), attr, model.get_parameter(first))
    if any(t.is_meta for t in itertools.chain(model.parameters(), model.buffers())):
        model = cls()
        model.load_state_dict(dict(state_dict), strict=True)
    return model


def _twin(cls, reference: torch.nn.Module) -> torch.nn.Module:
    """A model of another build with the reference's weights, in the same mode."""
    return _loaded(cls, reference.state_dict()).train(reference.training)


def _assert_same_outputs(a, b, inputs) -> None:
    with torch.no_grad():
        expected, actual = _as_tuple(a(*inputs)), _as_tuple(b(*inputs))
    assert len(expected) == len(actual)
    for x, y in zip(expected, actual):
        torch.testing.assert_close(y, x, atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("case_id", list(CASES))
def test_o0_and_o2_agree(build, case_id):
    case = CASES[case_id]
    a = _reference(build, case)
    b = _twin(build(case, 2), a)
    for inputs in case.inputs():
        _assert_same_outputs(a, b, inputs)


# Gradients are compared with a tolerance that grows with each tensor's scale: float32 sums in
# another order (one fused q/k/v matmul instead of three) differ by a few ulps of the tensor's
# largest entries.  Measured on T5 v1.1 (whose HF init gives the summed-logits loss gradients up
# to 408 on the fused q/k/v weight): -O2 and -O0 differ by 5.6e-7 of that, while -O0's own float32
# gradient is 9.1e-7 of it away from float64's; so 1e-5 of the largest entry, above atol 1e-4.
GRADIENT_ATOL, GRADIENT_RTOL, GRADIENT_SCALE_TOL = 1e-4, 1e-3, 1e-5


@pytest.mark.parametrize("case_id", list(CASES))
def test_gradients_agree_in_training(build, case_id):
    case = CASES[case_id]
    torch.manual_seed(0)
    a = build(case, 0)().train()
    b = _twin(build(case, 2), a)
    for name in case.frozen:
        a.get_parameter(name).requires_grad_(False)
        b.get_parameter(name).requires_grad_(False)
    inputs = case.inputs()[0]
    sum(o.float().sum() for o in _as_tuple(a(*inputs)) if o is not None).backward()   # None: a loss without labels
    sum(o.float().sum() for o in _as_tuple(b(*inputs)) if o is not None).backward()
    # -O2 may fuse layers: load -O0's gradients through -O2's checkpoint hooks to compare like with like.
    grads = {n: p.grad for n, p in a.named_parameters(remove_duplicate=False) if p.requires_grad}
    expected = dict(_loaded(build(case, 2), {**a.state_dict(), **grads}).named_parameters())
    assert [n for n, _ in b.named_parameters()] == list(expected)
    for name, p in b.named_parameters():
        if name not in case.frozen:
            atol = GRADIENT_ATOL + GRADIENT_SCALE_TOL * expected[name].abs().max().item()
            torch.testing.assert_close(p.grad, expected[name], atol=atol, rtol=GRADIENT_RTOL, msg=name)


@pytest.mark.parametrize("case_id", INFERENCE)
def test_inference_build_agrees_in_eval(build, case_id):
    case = CASES[case_id]
    a = _reference(build, case)
    c = _twin(build(case, 2, inference=True), a)
    assert not any(isinstance(m, torch.nn.Dropout) for m in c.modules())
    for inputs in case.inputs():
        _assert_same_outputs(a, c, inputs)
