"""dlc's training build (-O2: fused projections, SDPA attention) computes the gradients the
reference does, on the same weights: one forward + backward of a loss, dropout off so both are
deterministic, and on (the models' training configuration) with the same seed before each
forward: both draw the same dropout masks in the same order, so the runtime's attention with
dropout (dlc/runtime/attention.py) is checked against the reference's SDPA.  Gradients are compared parameter by parameter after mapping the reference's
names (and separate Q/K/V) onto dlc's, the same way its checkpoints load.  The loss is the
output's dot product with a fixed random tensor: the mean square the training-step benchmark
uses (benchmarks/arms.py) is nearly constant after a final layer norm (the normalized output's
mean square is about 1 whatever the input), so its gradients are rounding noise, well inside
the tolerance whatever the kernels compute.  `optimize_for_training` (each linear layer's GEMMs
on oneDNN, dlc/runtime/helpers.py) is checked the same way."""
from __future__ import annotations

import copy

import pytest
import torch

from tests.helpers import ROOT, compile_to_module
from tests.lazy_import import lazy_import

transformers = lazy_import("transformers")

# Equal to 1e-5: absolute on the gradient, with the relative slack of fp32 summation order.
ATOL, RTOL = 1e-5, 1e-4

BERT = {"vocab": 100, "hidden": 64, "layers": 2, "heads": 4, "intermediate": 128, "max_positions": 32,
        "dropout": 0.0, "attention_dropout": 0.0}
GPT2 = {"vocab": 100, "positions": 32, "d_model": 64, "layers": 2, "heads": 4, "dropout": 0.0}


BERT_DROPOUT = {**BERT, "dropout": 0.1, "attention_dropout": 0.1}
GPT2_DROPOUT = {**GPT2, "dropout": 0.1}


def _bert_reference(dropout: float = 0.0):
    config = transformers.BertConfig(vocab_size=100, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=128, max_position_embeddings=32, hidden_dropout_prob=dropout,
                                     attention_probs_dropout_prob=dropout, attn_implementation="sdpa")
    return transformers.BertModel(config, add_pooling_layer=True)


def _gpt2_reference(dropout: float = 0.0):
    config = transformers.GPT2Config(vocab_size=100, n_positions=32, n_embd=64, n_layer=2, n_head=4,
                                     resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout,
                                     attn_implementation="sdpa")
    return transformers.GPT2Model(config)


def _resnet_reference():
    import torchvision
    return torchvision.models.resnet18(num_classes=10)


def _tokens():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 100, (2, 12), generator=g)
    mask = torch.ones(2, 12, dtype=torch.bool)
    mask[1, 9:] = False
    return ids, mask


# name -> (spec, class, overrides, reference, run reference, run dlc)
CASES = {
    "bert": ("bert", "BertModel", BERT, _bert_reference,
             lambda m, ids, mask: m(input_ids=ids, attention_mask=mask.long()).last_hidden_state,
             lambda m, ids, mask: m(ids, mask)[0]),
    "gpt2": ("gpt2", "GPT2Model", GPT2, _gpt2_reference,
             lambda m, ids, mask: m(input_ids=ids, attention_mask=mask.long()).last_hidden_state,
             lambda m, ids, mask: m(ids, mask)),
    "bert-dropout": ("bert", "BertModel", BERT_DROPOUT, lambda: _bert_reference(0.1),
                          lambda m, ids, mask: m(input_ids=ids, attention_mask=mask.long()).last_hidden_state,
                          lambda m, ids, mask: m(ids, mask)[0]),
    "gpt2-dropout": ("gpt2", "GPT2Model", GPT2_DROPOUT, lambda: _gpt2_reference(0.1),
                          lambda m, ids, mask: m(input_ids=ids, attention_mask=mask.long()).last_hidden_state,
                          lambda m, ids, mask: m(ids, mask)),
    "resnet18": ("resnet", "ResNet", {"depth": 18, "num_classes": 10}, _resnet_reference,
                 lambda m, images: m(images), lambda m, images: m(images)),
}


def training_loss(output: torch.Tensor) -> torch.Tensor:
    """A scalar whose gradient is a fixed random tensor: every output element counts."""
    weights = torch.randn(output.shape, generator=torch.Generator().manual_seed(2))
    return (output.float() * weights).mean()


@pytest.mark.parametrize("kernels", ["compiled", "onednn"])
@pytest.mark.parametrize("case", ["bert", "gpt2", "bert-dropout", "gpt2-dropout",
                                  pytest.param("resnet18", marks=pytest.mark.slow)])
def test_training_build_gradients_equal_the_reference(tmp_path, case, kernels):
    spec, cls, overrides, build_reference, run_reference, run_dlc = CASES[case]
    torch.manual_seed(0)
    reference = build_reference().train()
    module = compile_to_module(ROOT / "specs" / f"{spec}.dl", tmp_path, overrides, opt_level=2, name=f"{spec}_train")
    model = getattr(module, cls)()
    if hasattr(model, "load_reference_state_dict"):
        model.load_reference_state_dict(reference.state_dict())
    else:
        model.load_state_dict(reference.state_dict())
    model.train()
    inputs = _tokens() if spec != "resnet" else (torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)),)
    if kernels != "compiled":
        if not torch.backends.mkldnn.is_available():
            pytest.skip("this torch build has no oneDNN")
        parameters = list(model.parameters())
        model.optimize_for_training(*inputs, kernels=kernels)
        assert list(model.parameters()) == parameters      # the same tensors: an optimizer built before works
        linear = [line for line in model.training_summary if line.startswith("linear")]
        assert linear and all("onednn" in line for line in linear), model.training_summary
    torch.manual_seed(1)                  # the same dropout masks on both sides
    expected_loss = training_loss(run_reference(reference, *inputs))
    expected_loss.backward()
    torch.manual_seed(1)
    loss = training_loss(run_dlc(model, *inputs))
    loss.backward()
    torch.testing.assert_close(loss, expected_loss, atol=ATOL, rtol=RTOL)
    # the reference's gradients, named and fused as dlc's parameters, by loading them as a checkpoint
    grads = {name: (p.grad if p.grad is not None else torch.zeros_like(p)) for name, p in reference.named_parameters()}
    buffers = {name: b for name, b in reference.named_buffers() if name in reference.state_dict()}
    mapped = copy.deepcopy(model)
    load = mapped.load_reference_state_dict if hasattr(mapped, "load_reference_state_dict") else mapped.load_state_dict
    load({**grads, **buffers}, strict=False)
    expected = dict(mapped.named_parameters())
    with_gradients = 0
    for name, parameter in model.named_parameters():   # the pooler is outside the loss: no gradient either side
        grad = parameter.grad if parameter.grad is not None else torch.zeros_like(parameter)
        torch.testing.assert_close(grad, expected[name].detach(), atol=ATOL, rtol=RTOL, msg=name)
        with_gradients += parameter.grad is not None
    assert with_gradients >= len(list(model.parameters())) - 2 > 10
