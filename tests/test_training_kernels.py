"""optimize_for_training's oneDNN linear layers (dlc/runtime/helpers.py: OneDNNLinear,
choose_training_kernels): the forward and all three gradients equal nn.Linear's, inputs oneDNN
does not cover fall back to nn.Linear's forward, and choosing swaps a layer's class only (the
same parameters, state_dict keys and checkpoints); its choice of layout for convolutions
(choose_training_memory_format) leaves the model's state as it found it.  Whole models' gradients against the
references: tests/test_training_gradients.py."""
from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch import nn

from dlc.runtime.helpers import (
    OneDNNLinear,
    choose_training_kernels,
    choose_training_memory_format,
    packed_linear_kernels,
)

pytestmark = pytest.mark.skipif("onednn" not in packed_linear_kernels(), reason="this torch build has no oneDNN linear")


def _pair(in_features: int, out_features: int, bias: bool) -> tuple[nn.Linear, nn.Linear]:
    torch.manual_seed(0)
    plain = nn.Linear(in_features, out_features, bias=bias)
    mine = copy.deepcopy(plain)
    mine.__class__ = OneDNNLinear
    return plain, mine


def _grads(layer: nn.Linear, x: torch.Tensor, weights: torch.Tensor) -> list[torch.Tensor]:
    x = x.detach().requires_grad_()
    out = layer(x)
    (out * weights).sum().backward()
    return [out.detach(), x.grad, *(p.grad for p in layer.parameters())]


@pytest.mark.parametrize("shape, bias, transposed", [((24, 40), True, False), ((3, 7, 40), True, False),
                                                     ((7, 3, 40), False, True), ((1, 40), True, False)])
def test_forward_and_gradients_equal_nn_linear(shape, bias, transposed):
    plain, mine = _pair(40, 56, bias)
    x = torch.randn(*shape)
    if transposed:                                   # a non-contiguous input, as after a permute
        x = x.transpose(0, 1).contiguous().transpose(0, 1)
    weights = torch.randn(*shape[:-1], 56)
    for expected, got in zip(_grads(plain, x, weights), _grads(mine, x, weights), strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", ["bf16", "autocast", "no grad"])
def test_inputs_onednn_does_not_cover_run_nn_linear(case):
    plain, mine = _pair(16, 8, True)
    x = torch.randn(4, 16)
    if case == "bf16":
        plain, mine, x = plain.bfloat16(), mine.bfloat16(), x.bfloat16()
        assert torch.equal(mine(x), plain(x))
    elif case == "autocast":
        with torch.autocast("cpu", dtype=torch.bfloat16):
            expected, got = plain(x), mine(x)
        assert got.dtype == expected.dtype == torch.bfloat16 and torch.equal(got, expected)
    else:
        with torch.no_grad():
            torch.testing.assert_close(mine(x), plain(x), rtol=1e-5, atol=1e-6)


def test_choosing_keeps_the_parameters_keys_and_checkpoints():
    model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 32), nn.Linear(32, 32, bias=False))
    parameters, keys = list(model.parameters()), list(model.state_dict())
    summary = choose_training_kernels(model, (torch.randn(5, 32),), "onednn")
    assert [type(m) for m in model] == [OneDNNLinear, nn.ReLU, OneDNNLinear, OneDNNLinear]
    assert summary == ["linear 32->64, 5 rows, 1 layer(s): onednn (asked for onednn)",
                       "linear 64->32, 5 rows, 1 layer(s): onednn (asked for onednn)",
                       "linear 32->32 (no bias), 5 rows, 1 layer(s): onednn (asked for onednn)"]
    assert list(model.parameters()) == parameters and list(model.state_dict()) == keys
    copied = pickle.loads(pickle.dumps(model))
    assert type(copied[0]) is OneDNNLinear and torch.equal(copied[0].weight, model[0].weight)
    choose_training_kernels(model, (), "plain")
    assert [type(m) for m in model] == [nn.Linear, nn.ReLU, nn.Linear, nn.Linear]


def test_measuring_names_both_timings_and_picks_one():
    model = nn.Sequential(nn.Linear(64, 64))
    (line,) = choose_training_kernels(model, (torch.randn(256, 64),))
    assert line.startswith("linear 64->64, 256 rows, 1 layer(s): ")
    assert "forward + backward measured" in line and "onednn" in line and "plain" in line
    chosen = line.split(": ", 1)[1].split(" ", 1)[0]
    assert type(model[0]) is (OneDNNLinear if chosen == "onednn" else nn.Linear)


def test_measuring_the_layout_leaves_gradients_statistics_and_random_state_alone():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout(0.5),
                          nn.Conv2d(8, 4, 1)).train()
    x = torch.randn(2, 3, 16, 16)
    model(x).sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    buffers = [b.clone() for b in model.buffers()]
    parameters, rng = list(model.parameters()), torch.get_rng_state()
    (line,) = choose_training_memory_format(model, (x,))
    assert line.startswith(("channels-last convolution weights (forward + backward measured",
                            "contiguous convolution weights (forward + backward measured"))
    assert list(model.parameters()) == parameters
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads, strict=True))
    assert all(torch.equal(b, saved) for b, saved in zip(model.buffers(), buffers, strict=True))
    assert torch.equal(torch.get_rng_state(), rng)
    channels_last = model[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert channels_last == line.startswith("channels-last")


@pytest.mark.parametrize("kernels, inputs", [("plain", True), ("measure", False)])
def test_the_layout_is_left_alone_when_asked_or_without_inputs(kernels, inputs):
    model = nn.Sequential(nn.Conv2d(3, 8, 3))
    (line,) = choose_training_memory_format(model, (torch.randn(1, 3, 8, 8),) if inputs else (), kernels)
    assert line.startswith("convolution weights' layout unchanged") and model[0].weight.is_contiguous()
