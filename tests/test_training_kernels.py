"""optimize_for_training's oneDNN linear layers (dlc/runtime/helpers.py: OneDNNLinear,
choose_training_kernels): the forward and all three gradients equal nn.Linear's, inputs oneDNN
does not cover fall back to nn.Linear's forward, and choosing swaps a layer's class only (the
same parameters, state_dict keys and checkpoints).  Whole models' gradients against the
references: tests/test_training_gradients.py."""
from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch import nn

from dlc.runtime.helpers import OneDNNLinear, choose_training_kernels, onednn_training_available

pytestmark = pytest.mark.skipif(not onednn_training_available(), reason="this torch build has no oneDNN linear")


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
