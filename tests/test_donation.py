"""Argument donation (passes/donation.py, runtime/fusion.py's plan_overwrites): a fused residual
kernel adds into the memory of its sum's other input only where the compiler proved that input
dies there, following the calls from the model down; the model computes the same numbers bit for
bit, and no tensor anyone can still see -- the model's input, a block's input when the block is
called directly, a layer's output a forward hook kept -- is overwritten."""
from __future__ import annotations

import copy
import pickle
import re

import pytest
import torch

from compiler.driver import compile_spec
from tests.helpers import ROOT, compile_to_module, runtime_of
from tests.test_inference_build import _assert_same, _pair, _tolerance

pytestmark = pytest.mark.skipif(not hasattr(torch.ops.mkldnn, "_convolution_pointwise_"),
                                reason="this torch build has no in-place oneDNN fused convolution")

# Residual sums each model overwrites: every block's (ResNet-18's 8 basic blocks; MobileNetV2's
# 10 inverted residuals with a shortcut).
OVERWRITING = {"resnet18": 8, "mobilenet_v2": 10}
BLOCKS = ("BasicBlock", "InvertedResidual")


def _overwriting(model) -> list:
    return [m for m in model.modules() if type(m).__name__ == "FusedConv" and m.overwrite]


def _blocks(model) -> list:
    return [m for m in model.modules() if type(m).__name__.startswith(BLOCKS)]


def _in_place_calls(model, inputs) -> int:
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile, torch.inference_mode():
        model(*inputs)
    return sum(event.count for event in profile.key_averages() if event.key == "mkldnn::_convolution_pointwise_")


@pytest.mark.parametrize("case", list(OVERWRITING))
def test_donated_sums_run_in_place_and_compute_what_the_new_tensor_kernel_computes(tmp_path_factory, case):
    reference, _, model, inputs = _pair(tmp_path_factory, case)
    model.optimize_for_inference(*inputs, kernels="fused")
    overwriting = _overwriting(model)
    assert len(overwriting) == OVERWRITING[case]
    assert any("argument donation" in line for line in model.inference_summary)
    assert _in_place_calls(model, inputs) == OVERWRITING[case]
    given = tuple(x.clone() for x in inputs)
    with torch.inference_mode():
        in_place = model(*inputs)
        for layer in overwriting:
            layer.overwrite = False
        assert _in_place_calls(model, inputs) == 0
        assert torch.equal(model(*inputs), in_place)       # the same kernel, writing a new tensor instead
        _assert_same(in_place, reference(*inputs), **_tolerance(case))
    assert all(torch.equal(x, y) for x, y in zip(inputs, given))     # the model's input is its caller's


def test_a_block_called_directly_leaves_its_input_alone(tmp_path_factory):
    _, _, model, inputs = _pair(tmp_path_factory, "resnet18")
    model.optimize_for_inference(*inputs, kernels="fused")
    seen = []
    block = _blocks(model)[1]                     # a block without a downsample: its sum adds its input x
    handle = block.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    with torch.inference_mode():
        model(*inputs)
    handle.remove()
    x = seen[0]
    kept = x.clone()
    with torch.inference_mode():
        block(x)
    assert torch.equal(x, kept)


def test_forward_hooks_turn_overwriting_off_and_would_see_clobbered_tensors_otherwise(tmp_path_factory, monkeypatch):
    """A hook keeping each block's output must see what the block returned.  The guard is what keeps
    it so: with the check patched away, the next block's sum overwrites the kept tensors."""
    _, o2, model, inputs = _pair(tmp_path_factory, "resnet18")
    model.optimize_for_inference(*inputs, kernels="fused")

    def kept_outputs() -> tuple[list, list]:
        live, copies = [], []

        def keep(module, args, out) -> None:
            live.append(out)
            copies.append(out.clone())
        handles = [b.register_forward_hook(keep) for b in _blocks(model)]
        with torch.inference_mode():
            model(*inputs)
        for handle in handles:
            handle.remove()
        return live, copies

    live, copies = kept_outputs()
    assert all(torch.equal(a, b) for a, b in zip(live, copies))
    monkeypatch.setattr(runtime_of(o2), "_hooks_anywhere", lambda model: False)
    live, copies = kept_outputs()
    assert not all(torch.equal(a, b) for a, b in zip(live, copies))


def test_copies_pickles_and_a_second_optimization_keep_one_plan(tmp_path_factory):
    _, _, model, inputs = _pair(tmp_path_factory, "mobilenet_v2")
    model.optimize_for_inference(*inputs, kernels="fused")
    with torch.inference_mode():
        expected = model(*inputs)
    for other in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert len(_overwriting(other)) == OVERWRITING["mobilenet_v2"]
        assert _in_place_calls(other, inputs) == OVERWRITING["mobilenet_v2"]
        with torch.inference_mode():
            assert torch.equal(other(*inputs), expected)
    model.optimize_for_inference(*inputs, kernels="fused")
    assert len(model._forward_pre_hooks) == 1 and len(model._forward_hooks) == 1


def test_a_donated_sum_is_timed_adding_into_its_input_as_it_runs_in_the_model(tmp_path_factory, monkeypatch):
    """kernels="measure" times each donated residual sum's fused kernel in place (what the model runs),
    its other input put back before each call; a sum not donated, writing a new tensor."""
    _, o2, model, inputs = _pair(tmp_path_factory, "resnet18")
    runtime = runtime_of(o2)
    timed, measured = [], runtime.fastest_seconds

    def fastest(candidates, *args, setup=None, **kwargs):
        if "fused" not in candidates:                # the layout choice: measured as before
            return measured(candidates, *args, setup=setup, **kwargs)
        setup = setup or {}
        with torch.inference_mode():
            for name in ("fused", "fused"):          # twice: the second call must see the restored input
                if name in setup:
                    setup[name]()
                with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
                    out = candidates[name]()
                in_place = sum(e.count for e in profile.key_averages() if e.key == "mkldnn::_convolution_pointwise_")
                timed.append((in_place, out.clone(), bool(setup)))
        return {"fused": 0.001, "plain": 0.002}

    monkeypatch.setattr(runtime, "fastest_seconds", fastest)
    model.optimize_for_inference(*inputs)
    donated = [line for line in model.inference_summary if "(donated)" in line]
    assert donated and all(": fused (" in line for line in donated)
    assert len(_overwriting(model)) == OVERWRITING["resnet18"]
    in_place = [t for t in timed if t[0]]
    assert in_place and all(with_setup for _, _, with_setup in in_place)
    assert len(in_place) == 2 * len(donated)
    for first, second in zip(in_place[::2], in_place[1::2]):
        assert torch.equal(first[1], second[1])     # the same sum both times: the input was put back
    assert all(count in (0, 1) for count, _, _ in timed)


def test_a_failing_forward_ends_its_donations(tmp_path_factory):
    _, o2, model, inputs = _pair(tmp_path_factory, "resnet18")
    model.optimize_for_inference(*inputs, kernels="fused")
    with pytest.raises(RuntimeError), torch.inference_mode():
        model(inputs[0][:, :2])                                    # two channels where the stem takes three
    assert runtime_of(o2)._DONATIONS.active == []


def test_autograd_and_other_dtypes_never_overwrite(tmp_path_factory):
    reference, _, model, inputs = _pair(tmp_path_factory, "resnet18")
    model.optimize_for_inference(*inputs, kernels="fused")
    small = tuple(x[..., :32, :32] for x in inputs)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        out = model(*small)                                        # grad mode: the weights need gradients
        out.sum().backward()
        with torch.no_grad():
            doubled = model.double()(*(x.double() for x in small))
    assert not any(e.key == "mkldnn::_convolution_pointwise_" for e in profile.key_averages())
    _assert_same(out, reference(*small), **_tolerance("resnet18"))
    with torch.no_grad():
        _assert_same(doubled, reference.double()(*(x.double() for x in small)), **_tolerance("resnet18"))


# ------------------------------------------------------------------ what the compiler finds
def _text(spec: str, level: int = 2) -> str:
    result = compile_spec(ROOT / "specs" / f"{spec}.dl", opt_level=level)
    assert result.text is not None
    return result.text


def test_resnet_blocks_overwrite_a_donated_x_and_the_model_donates_each_stage():
    text = _text("resnet")
    # Bottleneck's two specializations merge: the downsample's own result always dies at the sum,
    # x only when donated; an instance cannot tell which it is, so the class states the stricter.
    assert 'RESIDUAL_OVERWRITES = (\n        ("conv3_residual", ("x",)),\n    )' in text
    assert 'DONATES = (\n        ("layer1", 0, ()),\n        ("layer2", 0, ()),\n' in text
    assert "RESIDUAL_OVERWRITES" not in _text("resnet", 1) and "DONATES" not in _text("resnet", 1)


def test_models_without_residual_convolutions_donate_nothing():
    for spec in ("vgg", "bert"):
        text = _text(spec)
        assert "DONATES" not in text and "RESIDUAL_OVERWRITES" not in text


def _compiled(tmp_path, body: str) -> str:
    spec = tmp_path / "spec.dl"
    spec.write_text(body)
    result = compile_spec(spec, opt_level=2)
    assert result.text is not None, [d.message for d in result.diagnostics]
    return result.text


RESIDUAL = """block Residual(c: int) {
    in x: [B, c, H, W]
    h = ReLU()(Conv2d(c, c, 3, padding=1)(x))
    out y = ReLU()(Conv2d(c, c, 3, padding=1)(h) + x)
}
"""


@pytest.mark.parametrize("body, donated", [
    ("a = Conv2d(c, c, 1)(x)\n    out z = Residual(c)(a)", True),                       # made here, dies there
    ("out z = Residual(c)(x)", False),                                                   # the caller's input
    ("a = Conv2d(c, c, 1)(x)\n    out z = Residual(c)(a) + a", False),                  # read after the call
    ("a = Conv2d(c, c, 1)(x)\n    out z = Residual(c)(Transpose(2, 3)(a))", True),        # a view of it
    ("a = Conv2d(c, c, 1)(x)\n    v = Transpose(2, 3)(a)\n    out z = Residual(c)(v) + a", False),   # its base read
    ("a = Conv2d(c, c, 1)(x)\n    out z = Residual(c)(Dropout(0.1)(a))", True),         # eval: a itself
])
def test_a_call_donates_only_a_value_dying_there(tmp_path, body, donated):
    text = _compiled(tmp_path, RESIDUAL + f"model M(c: int = 4) {{\n    in x: [B, c, 8, 8]\n    {body}\n}}\n")
    assert '("conv2d_1_residual", ("x",))' in text
    model = text[text.find("class M("):]
    assert bool(re.search(r'DONATES = \(\n        \("z", 0, \(\)\),', model)) == donated, model


def test_a_sum_whose_input_is_read_later_or_by_its_convolution_never_overwrites(tmp_path):
    text = _compiled(tmp_path, """block Later(c: int) {
    in x: [B, c, H, W]
    s = ReLU()(Conv2d(c, c, 3, padding=1)(ReLU()(Conv2d(c, c, 1)(x))) + x)
    out y = s + x
}

block Reads(c: int) {
    in x: [B, c, H, W]
    out y = ReLU()(Conv2d(c, c, 3, padding=1)(x) + x)
}

model M(c: int = 4) {
    in x: [B, c, 8, 8]
    out z = Reads(c)(Later(c)(Conv2d(c, c, 1)(x)))
}
""")
    assert "EPILOGUES" in text and "RESIDUAL_OVERWRITES" not in text and "DONATES" not in text


@pytest.mark.parametrize("second, donated", [
    ("Conv2d(c, c, 1)(a) + a", True),     # each layer's output is memory it made or its carried input
    ("Conv2d(c, c, 1)(a) + m", False),    # the output may be `m`, which every layer reads
])
def test_a_repeat_donates_its_carry_only_when_no_layer_passes_on_a_fixed_input(tmp_path, second, donated):
    text = _compiled(tmp_path, f"""block Mix(c: int) {{
    in x: [B, c, H, W]
    in m: [B, c, H, W]
    a = ReLU()(Conv2d(c, c, 3, padding=1)(ReLU()(Conv2d(c, c, 1)(x))) + x)
    out y = ReLU()({second})
}}

model M(c: int = 4) {{
    in x: [B, c, 8, 8]
    a = Conv2d(c, c, 1)(x)
    m = Conv2d(c, c, 1)(x)
    out z = repeat(3) Mix(c)(a, m)
}}
""")
    assert '("conv2d_1_residual", ("x",)),' in text
    model = text[text.find("class M("):]
    assert bool(re.search(r'DONATES = \(\n        \("z", 0, \(\)\),', model)) == donated, model


REPEATED = """block Mix(c: int) {
    in x: [B, c, H, W]
    in m: [B, c, H, W]
    out y = ReLU()(Conv2d(c, c, 3, padding=1)(ReLU()(Conv2d(c, c, 1)(x) + m)) + x)
}

model Stack(c: int = 8) {
    in x: [B, c, 16, 16]
    m = Conv2d(c, c, 1)(x)
    out z = repeat(3) Mix(c)(Conv2d(c, c, 1)(x), m)
}
"""


def test_a_repeated_block_overwrites_each_carried_input_and_leaves_the_fixed_one(tmp_path, monkeypatch):
    """Each layer of a repeat adds into the input it was handed (the model made it; each layer's
    output is the next one's input), never into `m`, which every layer reads.  The layout is pinned
    to channels-last: measured, it may come out contiguous, and then the model's own first
    convolution hands the first layer an NCHW tensor where its fused kernel computes channels-last,
    which the kernel declines to overwrite (a timing would decide the count)."""
    o0 = compile_to_module(REPEATED, tmp_path, opt_level=0, name="stack_o0")
    o2 = compile_to_module(REPEATED, tmp_path, opt_level=2, name="stack_o2")
    monkeypatch.setattr(o2, "choose_memory_format", lambda model, example_inputs=(): runtime_of(o2).choose_memory_format(model))
    torch.manual_seed(0)
    reference = o0.Stack().eval()
    model = o2.Stack().eval()
    model.load_state_dict(reference.state_dict())
    x = torch.randn(2, 8, 16, 16)
    model.optimize_for_inference(x, kernels="fused")
    assert len(_overwriting(model)) == 3 and _in_place_calls(model, (x,)) == 3
    kept = x.clone()
    with torch.inference_mode():
        torch.testing.assert_close(model(x), reference(x), atol=1e-5, rtol=1e-4)
    assert torch.equal(x, kept)
