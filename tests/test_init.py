"""Initialization (`init` statements, init_weights(), tie_weights()): fresh generated models
against fresh reference models, per tensor; the same seed at every -O level; meta-device
construction.  Statistics: each tensor's mean and std from a model built with random weights,
compared with the reference's same tensor (renamed by the spec's `rename` rules)."""
from __future__ import annotations

import math

import pytest
import torch

from tests.helpers import ROOT, compile_to_module

SPECS = ROOT / "specs"

# Tolerances, from the sampling noise of a tensor of n values: its std may differ from the
# reference's by max(10%, 5 standard errors of a sample std, 5 / sqrt(2n)); its mean by
# max(0.1, 5 / sqrt(n)) reference stds; and for n >= 1000 its mean absolute deviation over its std
# by 0.03 (that ratio tells the shape: 0.80 for a normal draw, 0.87 for a uniform one of the same std).
def _std_tolerance(n: int) -> float:
    return max(0.1, 5 / math.sqrt(2 * n))


def _mean_tolerance(n: int) -> float:
    return max(0.1, 5 / math.sqrt(n))


def _deviation_ratio(t: torch.Tensor) -> float:
    return ((t - t.mean()).abs().mean() / t.std()).item()


def _renamed_reference(model, reference) -> dict[str, torch.Tensor]:
    """The reference's tensors under the model's names (a no-op for a model without renames)."""
    from dlc.runtime.helpers import rename_reference_keys
    return rename_reference_keys(model, reference.state_dict())


def assert_same_statistics(model, reference, skip=()) -> int:
    """Every parameter of `model` against the reference's tensor of the same (renamed) name."""
    ours = dict(model.named_parameters())
    theirs = _renamed_reference(model, reference)
    compared = 0
    for name, tensor in ours.items():
        if name not in theirs or any(s in name for s in skip):
            continue
        ref = theirs[name].float()
        mine = tensor.detach().float().reshape(ref.shape) if tensor.numel() == ref.numel() else tensor.detach().float()
        ref_std, my_std = ref.std().item() if ref.numel() > 1 else 0.0, mine.std().item() if mine.numel() > 1 else 0.0
        scale, n = max(ref_std, 1e-3), ref.numel()
        assert abs(my_std - ref_std) <= _std_tolerance(n) * scale, f"{name}: std {my_std:.5f}, reference {ref_std:.5f}"
        assert abs(mine.mean().item() - ref.mean().item()) <= _mean_tolerance(n) * scale + 1e-6, \
            f"{name}: mean {mine.mean().item():.5f}, reference {ref.mean().item():.5f}"
        if n >= 1000 and ref_std > 0:
            shape, ref_shape = _deviation_ratio(mine), _deviation_ratio(ref)
            assert abs(shape - ref_shape) <= 0.03, f"{name}: mean |deviation| / std {shape:.3f}, reference {ref_shape:.3f}"
        compared += 1
    assert compared >= len(ours) * 0.9, f"compared {compared} of {len(ours)} tensors"
    return compared


def test_gpt2_initializes_like_hf(tmp_path):
    transformers = pytest.importorskip("transformers")
    gpt2 = compile_to_module(SPECS / "gpt2.dl", tmp_path, {"layers": 2, "d_model": 128, "heads": 4, "vocab": 1000,
                                                            "positions": 128}, name="gpt2")
    torch.manual_seed(0)
    model = gpt2.GPT2LMHeadModel()
    config = transformers.GPT2Config(n_layer=2, n_embd=128, n_head=4, vocab_size=1000, n_positions=128)
    reference = transformers.GPT2LMHeadModel(config)
    assert_same_statistics(model, reference)
    # the scaled residual projections, and the tied embedding at HF's 0.02
    proj = model.transformer.blocks[0].attention.output.weight
    assert proj.std().item() == pytest.approx(0.02 / math.sqrt(4), rel=0.05)
    assert model.transformer.token_embeddings.weight.std().item() == pytest.approx(0.02, rel=0.05)


def test_gpt2_first_step_loss_is_log_vocab(tmp_path):
    gpt2 = compile_to_module(SPECS / "gpt2.dl", tmp_path, {"layers": 2, "d_model": 128, "heads": 4, "vocab": 5000,
                                                            "positions": 64}, name="gpt2")
    torch.manual_seed(0)
    model = gpt2.GPT2LMHeadModel().eval()
    ids = torch.randint(0, 5000, (4, 32))
    logits = model(ids).logits
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten())
    assert abs(loss.item() - math.log(5000)) <= 0.05 * math.log(5000)


def test_bert_initializes_like_hf(tmp_path):
    transformers = pytest.importorskip("transformers")
    bert = compile_to_module(SPECS / "bert.dl", tmp_path, {"layers": 2, "hidden": 128, "heads": 4, "intermediate": 256,
                                                            "vocab": 1000}, name="bert")
    torch.manual_seed(0)
    model = bert.BertForMaskedLM()
    config = transformers.BertConfig(num_hidden_layers=2, hidden_size=128, num_attention_heads=4,
                                     intermediate_size=256, vocab_size=1000)
    reference = transformers.BertForMaskedLM(config)
    assert_same_statistics(model, reference)
    assert model.bert.embeddings.word_embeddings.weight[0].abs().sum() == 0     # the padding row, as HF's


def test_t5_initializes_like_hf(tmp_path):
    transformers = pytest.importorskip("transformers")
    t5 = compile_to_module(SPECS / "t5.dl", tmp_path, {"layers": 2, "d_model": 64, "d_kv": 16, "d_ff": 128,
                                                        "heads": 4, "vocab": 1000}, name="t5")
    config = transformers.T5Config(num_layers=2, d_model=64, d_kv=16, d_ff=128, num_heads=4, vocab_size=1000)
    for ours, theirs in ((t5.T5ForConditionalGeneration, transformers.T5ForConditionalGeneration),):
        torch.manual_seed(0)
        assert_same_statistics(ours(), theirs(config))


def _torchvision():
    return pytest.importorskip("torchvision")


@pytest.mark.parametrize("spec, ours, theirs, skip", [
    ("resnet.dl", "ResNet18", "resnet18", ()),
    ("vgg.dl", "VGG11BN", "vgg11_bn", ()),
    ("mobilenet.dl", "MobileNetV2", "mobilenet_v2", ()),
])
def test_cnns_initialize_like_torchvision(tmp_path, spec, ours, theirs, skip):
    models = _torchvision().models
    module = compile_to_module(SPECS / spec, tmp_path, {"num_classes": 10}, name=spec[:-3])
    torch.manual_seed(0)
    assert_same_statistics(getattr(module, ours)(), getattr(models, theirs)(num_classes=10), skip)


def test_vit_initializes_like_torchvision(tmp_path):
    """torchvision's VisionTransformer: truncated-normal patch projection, Xavier-uniform packed
    attention and MLP weights, normal(1e-6) MLP biases, normal(0.02) positions, zero class token
    and head."""
    models = _torchvision().models
    config = {"image_size": 32, "patch_size": 8, "num_layers": 2, "num_heads": 4, "hidden_dim": 64, "mlp_dim": 128,
              "num_classes": 10}
    vit = compile_to_module(SPECS / "vit.dl", tmp_path, config, name="vit")
    torch.manual_seed(0)
    model, reference = vit.VisionTransformer(), models.VisionTransformer(**config)
    assert assert_same_statistics(model, reference) == len(list(model.parameters()))
    attention = model.encoder.blocks[0].self_attention
    bound = math.sqrt(6 / (64 + 3 * 64))                   # Xavier over the packed [3 * d, d] matrix
    assert attention.in_proj.weight.abs().max() <= bound and attention.in_proj.weight.std() > 0.9 * bound / math.sqrt(3)
    assert model.head.weight.abs().sum() == 0 and model.encoder.blocks[0].mlp.hidden.bias.abs().max() < 1e-4


def _same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("spec, model, overrides", [
    ("transformer.dl", "Transformer", {"layers": 1, "d_model": 32, "heads": 4, "d_ff": 64, "vocab": 100}),
    ("bert.dl", "BertModel", {"layers": 1, "hidden": 32, "heads": 4, "intermediate": 64, "vocab": 100}),
    ("llama.dl", "LlamaForCausalLM", {"num_hidden_layers": 1, "hidden_size": 32, "num_attention_heads": 4,
                                      "num_key_value_heads": 2, "intermediate_size": 64, "vocab_size": 100}),
    ("t5.dl", "T5Model", {"layers": 1, "d_model": 32, "d_kv": 8, "d_ff": 64, "heads": 4, "vocab": 100}),
])
def test_same_seed_same_weights_at_every_level(tmp_path, spec, model, overrides):
    """-O2 fuses q/k/v into one Linear; its parts are initialized as the separate layers, in order,
    so the -O0 model's weights, loaded into the -O2 layout, are the -O2 model's own."""
    built = {}
    for level in (0, 1, 2):
        module = compile_to_module(SPECS / spec, tmp_path, overrides, opt_level=level, name=f"o{level}")
        torch.manual_seed(0)
        built[level] = getattr(module, model)()
    o0, o1, o2 = ({k: v.clone() for k, v in built[level].state_dict().items()} for level in (0, 1, 2))
    assert _same_state(o0, o1)
    assert o2.keys() != o0.keys(), "nothing was fused: the test would not test fusion"
    built[2].load_state_dict(o0)             # joins the separate q/k/v tensors into the fused layers
    assert _same_state(o2, built[2].state_dict())


def test_gpt2_meta_device_keeps_ties(tmp_path):
    gpt2 = compile_to_module(SPECS / "gpt2.dl", tmp_path, {"layers": 2, "d_model": 64, "heads": 4, "vocab": 500,
                                                            "positions": 64}, name="gpt2")
    normal = gpt2.GPT2LMHeadModel()
    with torch.device("meta"):
        model = gpt2.GPT2LMHeadModel()
    model.to_empty(device="cpu")
    model.init_weights()
    count = sum(p.numel() for p in model.parameters())
    assert count == sum(p.numel() for p in normal.parameters())
    assert model.lm_head.weight is model.transformer.token_embeddings.weight
    with torch.device("meta"):
        loaded = gpt2.GPT2LMHeadModel()
    loaded.to_empty(device="cpu")
    loaded.load_state_dict(normal.state_dict())
    assert loaded.lm_head.weight is loaded.transformer.token_embeddings.weight
    ids = torch.randint(0, 500, (2, 8))
    torch.testing.assert_close(loaded.eval()(ids), normal.eval()(ids))


def test_transformer_meta_device_recomputes_the_position_table(tmp_path):
    transformer = compile_to_module(SPECS / "transformer.dl", tmp_path, {"layers": 1, "d_model": 32, "heads": 4,
                                                                          "d_ff": 64, "vocab": 100}, name="tr")
    normal = transformer.Transformer().eval()
    src, tgt = torch.randint(0, 100, (2, 7)), torch.randint(0, 100, (2, 5))
    for finish in ("init_weights", "load"):
        with torch.device("meta"):
            model = transformer.Transformer()
        model.to_empty(device="cpu")
        if finish == "init_weights":
            model.init_weights()
            model.load_state_dict(normal.state_dict())
        else:
            model.load_reference_state_dict(normal.state_dict())
        out = model.eval()(src, tgt)
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out, normal(src, tgt))


def test_init_weights_restores_construction(tmp_path):
    gpt2 = compile_to_module(SPECS / "gpt2.dl", tmp_path, {"layers": 1, "d_model": 32, "heads": 4, "vocab": 100,
                                                            "positions": 16}, name="gpt2")
    torch.manual_seed(1)
    model = gpt2.GPT2Model()
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(3.0)
    model.init_weights()
    assert model.blocks[0].attention_norm.weight.eq(1).all() and model.blocks[0].attention.qkv.bias.eq(0).all()
    assert model.token_embeddings.weight.std().item() == pytest.approx(0.02, rel=0.1)


PRECEDENCE = """
block Inner(d: int) {
    in x: [B, T, d]
    init Linear.weight = constant(1.0)
    init Linear.bias = constant(2.0)
    init b.weight = constant(3.0)
    a = Linear(d, d)(x)
    b = Linear(d, d)(a)
    out y = b
}
model Outer(d: int = 4) {
    in x: [B, T, d]
    init Linear.bias = constant(5.0)
    init inner.a.weight = constant(6.0)
    init Embedding.weight = zeros
    inner = Inner(d)(x)
    seq, h, c = LSTM(d, d)(inner)
    out y = Linear(d, d)(inner) + seq
    init seq.weight_hh_l0 = orthogonal(gain=2.0)
}
"""


def test_rules_a_named_layer_beats_an_op_and_the_outer_block_wins(tmp_path):
    module = compile_to_module(PRECEDENCE, tmp_path, name="precedence")
    torch.manual_seed(0)
    model = module.Outer()
    inner = model.inner
    b = inner.b
    assert inner.a.weight.eq(6.0).all()             # the outer block's rule naming the layer
    assert b.weight.eq(3.0).all()                   # the inner block's rule naming it beats the outer's op rule
    assert inner.a.bias.eq(5.0).all() and b.bias.eq(5.0).all()      # between op rules, the outer block's
    alone = module.Inner(4)                         # built alone, the inner block's own rules
    assert alone.a.weight.eq(1.0).all() and alone.a.bias.eq(2.0).all()
    recurrent = model.seq.weight_hh_l0              # [4 * d, d]: orthogonal columns, scaled by the gain
    torch.testing.assert_close(recurrent.T @ recurrent, 4.0 * torch.eye(4), atol=1e-5, rtol=0)
    head = [layer for name, layer in model.named_children() if name not in ("inner", "seq")][0]
    bound = 1 / math.sqrt(4)                        # no rule for the head's weight: PyTorch's default
    assert head.weight.abs().max() <= bound and head.bias.eq(5.0).all()
