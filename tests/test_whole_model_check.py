"""optimize_for_inference()'s last step: the kernels chosen layer by layer are kept only when the whole
forward of the example inputs is not slower with them (dlc/runtime/whole_model.py), and the
GELU after an unfused linear layer runs in place (fusion.py, InPlaceActivation)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.helpers import runtime_of
from tests.test_inference_build import _assert_same, _pair, _tolerance

CHANGED = ("PackedLinear", "FusedLinearActivation", "InPlaceActivation")


def _layer_types(model: nn.Module) -> list[str]:
    return [type(m).__name__ for m in model.modules()]


def _timed(monkeypatch, o2, chosen_s: float, compiled_s: float) -> list:
    """Make the whole-model timing report these seconds; returns the swaps it was asked to time."""
    asked = []

    def fake(model, example_inputs, swaps, *args, **kwargs):
        asked.append(swaps)
        return {"chosen": chosen_s, "compiled": compiled_s}

    monkeypatch.setattr(runtime_of(o2), "fastest_forward_seconds", fake)
    return asked


@pytest.mark.parametrize("case", ["bert", "gpt2"])
def test_chosen_layers_are_undone_when_the_whole_model_is_slower_with_them(tmp_path_factory, monkeypatch, case):
    reference, o2, model, inputs = _pair(tmp_path_factory, case)
    compiled_types = _layer_types(model.eval())
    asked = _timed(monkeypatch, o2, chosen_s=2.0, compiled_s=1.0)
    model.optimize_for_inference(*inputs)
    assert asked and asked[0], "no layer was swapped, so nothing was checked"
    assert _layer_types(model) == compiled_types
    assert "undone" in model.inference_summary[-1] and model.inference_summary[-1].startswith("whole model:")
    with torch.inference_mode():
        _assert_same(model(*inputs), reference(*inputs), **_tolerance(case))


def test_chosen_layers_are_kept_when_the_whole_model_is_not_slower(tmp_path_factory, monkeypatch):
    reference, o2, model, inputs = _pair(tmp_path_factory, "bert")
    _timed(monkeypatch, o2, chosen_s=1.0, compiled_s=1.0)
    model.optimize_for_inference(*inputs)
    assert "kept" in model.inference_summary[-1]
    # the FFN's GELU (and the MLM head's) is fused or runs in place after its linear layer
    assert any(name in CHANGED[1:] for name in _layer_types(model))
    with torch.inference_mode():
        _assert_same(model(*inputs), reference(*inputs), **_tolerance("bert"))


def test_asked_for_kernels_are_not_checked(tmp_path_factory, monkeypatch):
    _, o2, model, inputs = _pair(tmp_path_factory, "bert")
    asked = _timed(monkeypatch, o2, chosen_s=2.0, compiled_s=1.0)
    model.optimize_for_inference(*inputs, kernels="fused")
    assert not asked and not any(line.startswith("whole model:") for line in model.inference_summary)
    assert "FusedLinearActivation" in _layer_types(model)


def test_the_timing_alternates_and_leaves_the_chosen_layers(tmp_path_factory):
    _, o2, model, inputs = _pair(tmp_path_factory, "bert")
    runtime = runtime_of(o2)
    before = runtime.module_slots(model.eval())
    layer = model.encoder[0].feed_forward.hidden_gelu
    chosen = runtime.InPlaceActivation("gelu")
    model.encoder[0].feed_forward.hidden_gelu = chosen
    swaps = runtime._swapped(before, model)
    assert [(name, old, new) for _, name, old, new in swaps] == [("hidden_gelu", layer, chosen)]
    times = runtime.fastest_forward_seconds(model, inputs, swaps, budget_s=0.0)
    assert set(times) == {"chosen", "compiled"} and all(0 < t < 60 for t in times.values())
    assert model.encoder[0].feed_forward.hidden_gelu is chosen


def test_in_place_gelu_overwrites_only_without_autograd(tmp_path_factory):
    _, o2, _, _ = _pair(tmp_path_factory, "gpt2")
    runtime = runtime_of(o2)
    for kind, approximate in (("gelu", "none"), ("gelu_tanh", "tanh")):
        gelu = runtime.InPlaceActivation(kind)
        x = torch.randn(4, 8)
        expected = torch.nn.functional.gelu(x, approximate=approximate)
        with torch.inference_mode():
            y = x.clone()
            assert gelu(y) is y and torch.equal(y, expected)
        leaf = x.clone().requires_grad_()
        out = gelu(leaf * 1.0)                  # autograd needs GELU's input: not overwritten
        out.sum().backward()
        assert torch.equal(out.detach(), expected) and leaf.grad is not None and torch.equal(leaf.detach(), x)
