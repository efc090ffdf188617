"""The fuse-epilogues pass and the fused kernels optimize_for_inference() may swap in: convolution
(+ folded batch norm) (+ residual sum) + activation, and linear + GELU, as one oneDNN kernel.  On
the same weights the fused model computes what -O0 computes; it falls back to the plain layers
where the kernels do not apply; measuring keeps a fused kernel only where it won."""
from __future__ import annotations

import copy
import re

import pytest
import torch

from compiler.driver import compile_spec
from compiler.passes import select_passes
from tests.helpers import ROOT, runtime_of
from tests.test_inference_build import FOLDED_ATOL, FOLDED_RTOL, _assert_same, _count, _pair, _tolerance

pytestmark = pytest.mark.skipif(not hasattr(torch.ops.mkldnn, "_convolution_pointwise"),
                                reason="this torch build has no oneDNN fused kernels")

CONV_CASES = {"resnet18": 20, "mobilenet_v2": 52, "vgg11_bn": 8}      # chains each model has (incl. stem)


def _fused_kernels(model) -> int:
    return _count(model, "FusedConv") + _count(model, "FusedLinearActivation")


@pytest.mark.parametrize("case", list(CONV_CASES))
def test_fused_convolutions_compute_what_o0_computes(tmp_path_factory, case):
    reference, _, model, inputs = _pair(tmp_path_factory, case)
    model.optimize_for_inference(*inputs, kernels="fused")
    assert _count(model, "FusedConv") == CONV_CASES[case]
    with torch.inference_mode():
        _assert_same(model(*inputs), reference(*inputs), **_tolerance(case))
        other = tuple(x[:1] for x in inputs)        # another batch than the weights were packed for
        _assert_same(model(*other), reference(*other), **_tolerance(case))


@pytest.mark.parametrize("case", ["bert", "gpt2"])
def test_linear_gelu_epilogues_compute_what_o0_computes(tmp_path_factory, case):
    reference, _, model, inputs = _pair(tmp_path_factory, case)
    model.optimize_for_inference(*inputs, kernels="fused")
    assert _count(model, "FusedLinearActivation") >= 2           # one FFN per layer (and BERT's MLM head)
    with torch.inference_mode():
        _assert_same(model(*inputs), reference(*inputs), **_tolerance(case))


def test_linear_kernels_pack_the_layers_not_fused(tmp_path_factory):
    """After the GELU layers are fused, packing the linear layers leaves a fused layer's own linear
    layer (its fallback) alone."""
    reference, o2, model, inputs = _pair(tmp_path_factory, "bert")
    if "onednn" not in runtime_of(o2).packed_linear_kernels():
        pytest.skip("this torch has no oneDNN packed linear")
    model.eval()
    o2.fuse_epilogues(model, inputs, "fused")
    o2.choose_linear_kernels(model, inputs, "onednn")
    fused = [m for m in model.modules() if type(m).__name__ == "FusedLinearActivation"]
    assert fused and all(type(m.layer) is torch.nn.Linear for m in fused) and _count(model, "PackedLinear") > 0
    with torch.inference_mode():
        _assert_same(model(*inputs), reference(*inputs), **_tolerance("bert"))


def test_measured_epilogues_are_reported_and_kept_only_when_faster(tmp_path_factory, monkeypatch):
    reference, o2, model, (images,) = _pair(tmp_path_factory, "resnet18")
    # The whole-model check after the per-shape choices is a timing a loaded machine can turn into an
    # undo (tests/test_whole_model_check.py covers both ways): kept here, so the choices can be counted.
    monkeypatch.setattr(runtime_of(o2), "fastest_forward_seconds", lambda *_, **__: {"chosen": 1.0, "compiled": 2.0})
    model.optimize_for_inference(images)
    lines = [line for line in model.inference_summary if line.startswith("conv ")]
    assert lines and sum(int(re.search(r"(\d+) layer\(s\)", line)[1]) for line in lines) == 20
    for line in lines:
        match = re.fullmatch(r"conv .*, \d+ layer\(s\): (fused|plain) \((.*)\)", line)
        assert match, line
        if match[2] == "the plain layers return NCHW activations here, which slow the layers after them":
            assert match[1] == "fused", line  # kept, whatever the times: the layers after it gain
            continue
        items = [item.rsplit(" ", 2) for item in match[2].removeprefix("fastest of interleaved calls: ").split(", ")]
        times = {name: float(ms) for name, ms, _ in items}
        others = min(t for name, t in times.items() if name != "fused")
        bound = runtime_of(o2).KEEP_MARGIN * others
        # the summary prints times to 0.01 ms and the choice was made on the unrounded ones: a
        # fused time within that rounding of the bound may have gone either way
        if abs(times["fused"] - bound) > 0.01:
            assert (match[1] == "fused") == (times["fused"] <= bound), line
    assert _count(model, "FusedConv") == sum(int(re.search(r"(\d+) layer", line)[1]) for line in lines
                                             if ": fused (" in line)
    with torch.no_grad():
        _assert_same(model(images), reference(images), atol=FOLDED_ATOL, rtol=FOLDED_RTOL)


def test_nothing_is_fused_without_example_inputs_or_when_asked_for_plain(tmp_path_factory):
    _, _, model, inputs = _pair(tmp_path_factory, "resnet18")
    assert "no example inputs" in " ".join(copy.deepcopy(model).optimize_for_inference().inference_summary)
    model.optimize_for_inference(*inputs, kernels="plain")
    assert _fused_kernels(model) == 0 and "asked for plain" in " ".join(model.inference_summary)


def test_without_fused_kernels_nothing_is_fused(tmp_path_factory, monkeypatch):
    reference, o2, model, inputs = _pair(tmp_path_factory, "mobilenet_v2")
    monkeypatch.setattr(runtime_of(o2), "conv_epilogue_kernels", lambda: False)
    model.optimize_for_inference(*inputs, kernels="fused")
    assert _fused_kernels(model) == 0 and "no oneDNN fused kernels" in " ".join(model.inference_summary)
    with torch.no_grad():
        _assert_same(model(*inputs), reference(*inputs), **_tolerance("mobilenet_v2"))


@pytest.mark.parametrize("size", [32, pytest.param(64, marks=pytest.mark.slow)])
def test_fused_layers_fall_back_at_call_time(tmp_path_factory, size):
    """With autograd, or in float64, the fused layers run the plain convolution and what followed it.
    The fast lane calls them on 32x32 images (the backward and the float64 forwards of a 64x64
    batch were 1.5 s of CPU); the full suite also on the 64x64 images the kernels were packed for."""
    reference, _, model, inputs = _pair(tmp_path_factory, "resnet18")
    model.optimize_for_inference(*inputs, kernels="fused")
    inputs = tuple(x[..., :size, :size] for x in inputs)
    out = model(*inputs)                                              # grad mode: the weights need gradients
    _assert_same(out, reference(*inputs), atol=FOLDED_ATOL, rtol=FOLDED_RTOL)
    out.sum().backward()
    assert all(m.conv.weight.grad is not None for m in model.modules() if type(m).__name__ == "FusedConv")
    with torch.no_grad():
        _assert_same(model.double()(*(x.double() for x in inputs)), reference.double()(*(x.double() for x in inputs)),
                     atol=FOLDED_ATOL, rtol=FOLDED_RTOL)


def test_fused_model_deep_copies(tmp_path_factory):
    reference, _, model, inputs = _pair(tmp_path_factory, "mobilenet_v2")
    copied = copy.deepcopy(model.optimize_for_inference(*inputs, kernels="fused"))
    assert _count(copied, "FusedConv") == CONV_CASES["mobilenet_v2"]
    with torch.inference_mode():
        _assert_same(copied(*inputs), reference(*inputs), **_tolerance("mobilenet_v2"))


# ------------------------------------------------------------------ what the compiler finds
def _optimized(spec: str, level: int):
    result = compile_spec(ROOT / "specs" / f"{spec}.dl", opt_level=level)
    assert result.text is not None
    return result.text


def test_o2_resnet_lists_its_chains_and_o1_none():
    text = _optimized("resnet", 2)
    assert '("conv3", "bn3", "conv3_residual", "relu", 0),' in text
    assert '("conv1", "bn1", "conv1_relu", "relu", -1),' in text
    assert 'CONV_EPILOGUE = ("conv", "bn", "none")' in text            # the downsample block, swapped whole
    assert "y = self.conv3_residual(bn3, downsample)" in text
    assert "EPILOGUES" not in _optimized("resnet", 1) and "Epilogue" not in _optimized("resnet", 1)


def test_o2_mobilenet_fuses_the_residual_sum_into_the_projection():
    text = _optimized("mobilenet", 2)
    assert '("project", None, "project_residual", "none", 1),' in text   # y = x + project
    assert 'CONV_EPILOGUE = ("conv", "bn", "relu6")' in text


def test_pass_declines_a_conv_read_twice(tmp_path):
    spec = tmp_path / "twice.dl"
    spec.write_text("model Twice() {\n    in x: [B, 3, 8, 8]\n    c = Conv2d(3, 4, 3, padding=1)(x)\n"
                    "    r = ReLU()(c)\n    out y: [B, 4, 8, 8] = r + c\n}\n")
    result = compile_spec(spec, opt_level=2)
    assert result.text is not None, [d.message for d in result.diagnostics]
    assert "EPILOGUES" not in result.text


def test_epilogue_pass_is_in_the_o2_pipeline():
    assert "fuse-epilogues" in [p.name for p in select_passes(2)]
    assert "fuse-epilogues" not in [p.name for p in select_passes(1)]


def test_helper_name_scan_finds_what_parsing_finds():
    """`dlc check` reserves the runtime helpers' names by a line scan; it must agree with the parse
    that copies them into generated files (fusion.py's included)."""
    from compiler.codegen import helpers
    assert helpers.helper_names() == set(helpers._definitions())
    assert {"FusedConv", "ResidualActivation", "fuse_epilogues", "PackedLinear"} <= helpers.helper_names()
