"""-O2 models' `optimize_for_inference()` (eval mode, batch norms folded into their convolutions,
channels-last convolutions, each linear shape on the kernel measured fastest: plain, or oneDNN- or
MKL-packed weights on CPU).  On the
same weights it computes what -O0 computes; without the packed kernels it falls back to the
plain layers; it still loads the reference checkpoint; it works under torch.compile and
torch.export; and --explain says which conv/BN pairs were folded and why others were not."""
from __future__ import annotations

import copy
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from compiler import __version__
from compiler.codegen.runtime_module import RUNTIME_MODULE, imported_runtime_names, runtime_module
from compiler.driver import compile_spec
from tests.helpers import ROOT, compile_to_module, runtime_of

ATOL, RTOL = 1e-5, 1e-4
# Folding computes x * (w * s) + b' where the -O0 model computes (x * w) * s + b, and channels-last
# convolutions pick other oneDNN kernels: a few ulps per layer, compounding through a deep network
# whose He-scaled activations are O(1..10) (measured: up to 2.4e-5 on MobileNetV2's logits).
FOLDED_ATOL, FOLDED_RTOL = 1e-4, 1e-4


def _images(shape: tuple[int, ...]):
    return lambda: (torch.randn(shape, generator=torch.Generator().manual_seed(1)),)


def _tokens(vocab: int, decoder: bool = False):
    def make():
        g = torch.Generator().manual_seed(1)
        ids = torch.randint(0, vocab, (2, 9), generator=g)
        mask = torch.ones(2, 9, dtype=torch.bool)
        mask[1, 6:] = False                                # the second sequence is padded
        if decoder:
            return ids, torch.randint(0, vocab, (2, 5), generator=g), mask
        return ids, mask
    return make


BERT = {"vocab": 100, "hidden": 64, "layers": 2, "heads": 4, "intermediate": 128, "max_positions": 32}
GPT2 = {"vocab": 100, "positions": 32, "d_model": 64, "layers": 2, "heads": 4}
T5 = {"vocab": 100, "d_model": 64, "d_kv": 16, "d_ff": 128, "layers": 2, "heads": 4}
RESNET18 = {"depth": 18, "num_classes": 10}

# name -> (spec, class, overrides, inputs, has batch norms)
CASES = {
    "resnet18": ("resnet", "ResNet", RESNET18, _images((2, 3, 64, 64)), True),
    "mobilenet_v2": ("mobilenet", "MobileNetV2", {"num_classes": 10}, _images((2, 3, 64, 64)), True),
    "vgg11_bn": ("vgg", "VGG", {"depth": 11, "batch_norm": True, "num_classes": 10}, _images((2, 3, 32, 32)), True),
    "bert": ("bert", "BertModel", BERT, _tokens(100), False),
    "gpt2": ("gpt2", "GPT2Model", GPT2, _tokens(100), False),
    "gpt2_lm_head": ("gpt2", "GPT2LMHeadModel", GPT2, lambda: _tokens(100)()[:1], False),
    "t5": ("t5", "T5Model", T5, _tokens(100, decoder=True), False),
}

_modules: dict[tuple, object] = {}


def _compiled(tmp_path_factory, spec: str, overrides: dict, level: int):
    """The generated module, compiled once per test session."""
    key = (spec, tuple(sorted(overrides.items())), level)
    if key not in _modules:
        _modules[key] = compile_to_module(ROOT / "specs" / f"{spec}.dl", tmp_path_factory.mktemp(spec), overrides,
                                          opt_level=level, name=f"{spec}_O{level}")
    return _modules[key]


def _randomized(model: nn.Module, inputs: tuple) -> nn.Module:
    """He-scaled weights, random batch-norm scales and shifts, and running statistics from a few
    training-mode forwards, so that folding has something to fold and activations stay O(1)."""
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)) and norms:
                m.weight.normal_(0.0, math.sqrt(2.0 / m.weight[0].numel()))
        for norm in norms:
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.normal_(0.0, 0.1)
            norm.momentum = None               # running statistics: the average over the batches seen
        if norms:
            model.train()
            for _ in range(3):
                model(*(torch.randn_like(x) for x in inputs))
    return model.eval()


_pairs: dict[str, tuple] = {}


def _pair(tmp_path_factory, case: str):
    """(-O0 model, -O2 module, -O2 model with the same weights, inputs).

    Each test gets its own deep copies of models built once per test process: building and
    randomizing a full-width ResNet-18 or MobileNetV2 twice (init, three training-mode forwards)
    cost more than most tests' own work, and tests change the models they get (optimize, double())."""
    if case not in _pairs:
        spec, cls, overrides, make_inputs, _ = CASES[case]
        o0 = _compiled(tmp_path_factory, spec, overrides, 0)
        o2 = _compiled(tmp_path_factory, spec, overrides, 2)
        inputs = make_inputs()
        torch.manual_seed(0)
        reference = _randomized(getattr(o0, cls)(), inputs)
        model = getattr(o2, cls)()
        model.load_state_dict(reference.state_dict(), strict=True)
        _pairs[case] = (reference, o2, model, inputs, torch.get_rng_state())
    reference, o2, model, inputs, rng = _pairs.pop(case) if case == "vgg11_bn" else _pairs[case]   # 1 GB: not kept
    torch.set_rng_state(rng)                   # as after building them: a test's own draws stay the same
    return copy.deepcopy(reference), o2, copy.deepcopy(model), tuple(x.clone() for x in inputs)


def _as_tuple(out) -> tuple:
    return out if isinstance(out, tuple) else (out,)


def _assert_same(actual, expected, atol: float = ATOL, rtol: float = RTOL) -> None:
    for got, want in zip(_as_tuple(actual), _as_tuple(expected), strict=True):
        torch.testing.assert_close(got, want, atol=atol, rtol=rtol)


def _tolerance(case: str) -> dict:
    folded = CASES[case][4]
    return {"atol": FOLDED_ATOL, "rtol": FOLDED_RTOL} if folded else {"atol": ATOL, "rtol": RTOL}


def _count(model: nn.Module, name: str) -> int:
    return sum(type(m).__name__ == name for m in model.modules())


def _unpacked_linear_layers(model: nn.Module, module) -> list[str]:
    linear, packed = nn.Linear, runtime_of(module).PackedLinear
    return [f"{path}.{name}" for path, parent in model.named_modules() if not isinstance(parent, packed)
            for name, child in parent.named_children() if isinstance(child, linear)]


# ------------------------------------------------------------------ -O0 against the optimized -O2 build
def _kernels(model: nn.Module) -> set[str]:
    return {m.kernel for m in model.modules() if type(m).__name__ == "PackedLinear"}


@pytest.mark.parametrize("case", list(CASES))
def test_optimized_model_computes_what_o0_computes(tmp_path_factory, case):
    reference, o2, model, inputs = _pair(tmp_path_factory, case)
    assert model.optimize_for_inference() is model and not model.training
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in model.modules())   # all folded
    assert _kernels(model) <= set(runtime_of(o2).packed_linear_kernels())                # whatever measuring chose
    with torch.no_grad():
        expected = reference(*inputs)
        _assert_same(model(*inputs), expected, **_tolerance(case))
    with torch.inference_mode():
        _assert_same(model(*inputs), expected, **_tolerance(case))


KERNEL_CASES = ["bert", "gpt2", "t5", "resnet18"]


@pytest.mark.parametrize("kernel", ["onednn", "mkl"])
@pytest.mark.parametrize("case", KERNEL_CASES)
def test_each_packed_kernel_computes_what_o0_computes(tmp_path_factory, case, kernel):
    """Forced, so both kernels are tested whichever one this machine measures faster; the example
    inputs make MKL's layers packed for the row counts they will see."""
    reference, o2, model, inputs = _pair(tmp_path_factory, case)
    if kernel not in runtime_of(o2).packed_linear_kernels():
        pytest.skip(f"this torch has no {kernel} packed linear")
    model.optimize_for_inference(*inputs, kernels=kernel)
    assert _kernels(model) == {kernel} and not _unpacked_linear_layers(model, o2)
    with torch.inference_mode():
        _assert_same(model(*inputs), reference(*inputs), **_tolerance(case))
        other = tuple(x[:1] for x in inputs)       # another row count: MKL's layers run the plain layer
        _assert_same(model(*other), reference(*other), **_tolerance(case))


@pytest.mark.parametrize("whole_model", ["kept", "undone"])
def test_measured_choices_are_reported(tmp_path_factory, monkeypatch, whole_model):
    _, o2, model, inputs = _pair(tmp_path_factory, "bert")
    compiled = {(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)}
    layers_before = [type(m) for m in model.modules()]
    # Which way the whole-model check goes is a timing (a loaded machine undoes choices): both are forced.
    forward = {"kept": {"chosen": 1.0, "compiled": 2.0}, "undone": {"chosen": 2.0, "compiled": 1.0}}[whole_model]
    monkeypatch.setattr(runtime_of(o2), "fastest_forward_seconds", lambda *args, **kwargs: forward)
    model.optimize_for_inference(*inputs)
    verdicts = [line for line in model.inference_summary if line.startswith("whole model: ")]
    if len(verdicts) == 1:  # no line when nothing was swapped (every choice plain)
        assert re.match(rf"whole model: the \d+ chosen layer\(s\) {whole_model}\b", verdicts[0]), verdicts
        if whole_model == "undone":
            assert [type(m) for m in model.modules()] == layers_before
    else:
        assert not verdicts and [type(m) for m in model.modules()] == layers_before, model.inference_summary
    # The summary reports what was chosen, before the whole-model check may undo it (on a loaded machine
    # it can), so the shapes come from the summary and the model as compiled, not from the model after.
    # A linear layer fused with its GELU (a "linear+gelu ...: fused" line) is not chosen for again.
    fused = {(int(a), int(b)) for a, b in re.findall(r"^linear\+\w+ (\d+)->(\d+) .*: fused \(",
                                                     "\n".join(model.inference_summary), re.M)}
    shapes = compiled - fused
    lines = [line for line in model.inference_summary if line.startswith("linear ")]
    # one line per distinct shape and row count: 18 rows (2 x 9 tokens), 2 for the pooler's first tokens
    assert len(lines) == len(shapes) + 1, model.inference_summary
    for line in lines:
        match = re.fullmatch(r"linear (\d+)->(\d+), (18|2) rows, (\d+) layer\(s\): (\w+) \((.*)\)", line)
        assert match and (int(match[1]), int(match[2])) in shapes, line
        if runtime_of(o2).packed_linear_kernels():
            assert match[6].startswith("measured ") and match[5] in ("plain", *runtime_of(o2).packed_linear_kernels())
            # the chosen kernel is the fastest measured, or plain when no packed one won by the margin
            times = dict(re.findall(r"(\w+) ([\d.]+) ms", match[6]))
            assert match[5] == "plain" or float(times[match[5]]) <= runtime_of(o2).KEEP_MARGIN * float(times["plain"])


def test_plain_kernels_keep_every_layer(tmp_path_factory):
    reference, o2, model, inputs = _pair(tmp_path_factory, "gpt2")
    model.optimize_for_inference(kernels="plain")
    assert not _kernels(model)
    with torch.no_grad():
        _assert_same(model(*inputs), reference(*inputs))


def test_channels_last_is_measured_with_example_inputs(tmp_path_factory):
    reference, _, model, (images,) = _pair(tmp_path_factory, "resnet18")
    model.optimize_for_inference(images)
    (line,) = [line for line in model.inference_summary if "convolution weights" in line]
    assert "measured channels-last" in line
    chose_last = line.startswith("channels-last")
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))   # conv1 itself, or inside its fused kernel
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) == chose_last
    with torch.no_grad():
        _assert_same(model(images), reference(images), atol=FOLDED_ATOL, rtol=FOLDED_RTOL)


def test_channels_last_weights_and_idempotence(tmp_path_factory):
    reference, _, model, (images,) = _pair(tmp_path_factory, "resnet18")
    model.optimize_for_inference().optimize_for_inference()          # a second call changes nothing
    assert model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert isinstance(model.bn1, nn.Identity) and model.conv1.bias is not None
    with torch.no_grad():
        _assert_same(model(images), reference(images), atol=FOLDED_ATOL, rtol=FOLDED_RTOL)
        _assert_same(model(images.contiguous(memory_format=torch.channels_last)), reference(images),
                     atol=FOLDED_ATOL, rtol=FOLDED_RTOL)


# ------------------------------------------------------------------ falling back
def test_without_packed_kernels_layers_stay_linear(tmp_path_factory, monkeypatch):
    reference, o2, model, inputs = _pair(tmp_path_factory, "gpt2")
    monkeypatch.setattr(runtime_of(o2), "packed_linear_available", lambda: False)
    linear_types = [type(m) for m in model.modules() if isinstance(m, nn.Linear)]
    model.optimize_for_inference()
    assert linear_types and [type(m) for m in model.modules() if isinstance(m, nn.Linear)] == linear_types
    assert _count(model, "PackedLinear") == 0
    assert all("no packed kernel" in line for line in model.inference_summary if line.startswith("linear"))
    with torch.no_grad():
        _assert_same(model(*inputs), reference(*inputs))


@pytest.mark.skipif(not hasattr(torch.ops.mkldnn, "_linear_pointwise"), reason="no oneDNN packed linear")
def test_packed_layers_fall_back_at_call_time(tmp_path_factory):
    """With autograd, or in float64, the packed layers run the original ones."""
    reference, _, model, inputs = _pair(tmp_path_factory, "bert")
    model.optimize_for_inference(kernels="onednn")
    assert _count(model, "PackedLinear") > 0
    outputs = model(*inputs)                                         # grad mode: the weights need gradients
    _assert_same(outputs, reference(*inputs))
    sum(out.sum() for out in outputs).backward()
    assert all(m.layer.weight.grad is not None for m in model.modules() if type(m).__name__ == "PackedLinear")
    with torch.no_grad():
        _assert_same(model.double()(*inputs), reference.double()(*inputs))


def test_optimized_model_deep_copies(tmp_path_factory):
    reference, _, model, inputs = _pair(tmp_path_factory, "bert")
    copied = copy.deepcopy(model.optimize_for_inference())
    with torch.no_grad():
        _assert_same(copied(*inputs), reference(*inputs))


# ------------------------------------------------------------------ the reference checkpoint
def test_o2_resnet_loads_torchvision_and_matches_it_after_optimizing(tmp_path_factory):
    from tests.test_parity_vision import materialize, randomize, torchvision_builder

    shape = (2, 3, 64, 64)
    reference = randomize(materialize(torchvision_builder("resnet18")), shape)
    model = _compiled(tmp_path_factory, "resnet", {}, 2).ResNet18()
    result = model.load_reference_state_dict(reference.state_dict())        # before optimizing: strict
    assert not result.missing_keys and not result.unexpected_keys
    model.optimize_for_inference()
    images = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        _assert_same(model(images), reference(images), atol=FOLDED_ATOL, rtol=FOLDED_RTOL)


# ------------------------------------------------------------------ --explain
DECLINED = """
model Net() {
    in x: [B, 3, H, W]
    stem = Conv2d(3, 8, 3, padding=1, bias=false)(x)
    stem_bn = BatchNorm2d(8)(stem)
    shared = Conv2d(8, 8, 3, padding=1)
    a_bn = BatchNorm2d(8)(shared(stem_bn))
    b_bn = BatchNorm2d(8)(shared(a_bn))
    side = Conv2d(8, 8, 1)(b_bn)
    side_bn = BatchNorm2d(8)(side)
    out y = side_bn + side
}
"""


def test_explain_lists_folded_and_declined_pairs(tmp_path):
    path = tmp_path / "net.dl"
    path.write_text(DECLINED)
    log = compile_spec(path, opt_level=2).log
    assert "fold-conv-bn: changed Net" in log
    text = "\n".join(log)
    assert re.search(r"folded stem_bn into stem in Net \(.*net.dl:4:\d+, .*net.dl:5:\d+\)", text), text
    assert re.search(r"declined shared \(.*net.dl:7:\d+\) in Net: shared is applied more than once", text), text
    assert re.search(r"declined side \(.*net.dl:9:\d+\) in Net: its output is also read by `y` \(.*net.dl:11:\d+\)",
                     text), text
    assert not [line for line in log if "declined stem " in line]


def test_resnet_explain_folds_every_pair():
    log = compile_spec(ROOT / "specs" / "resnet.dl", opt_level=2, overrides=RESNET18).log
    folded = [line for line in log if line.strip().startswith("folded ")]
    assert "  folded bn1 into conv1 in ResNet (specs/resnet.dl:19:13, specs/resnet.dl:20:11)" in [
        line.replace(str(ROOT) + "/", "") for line in folded]
    assert not [line for line in log if "declined" in line and "vision.dl" in line]


def test_declined_pairs_are_not_folded(tmp_path):
    """The spec above, -O0 against -O2 + optimize_for_inference: only stem/stem_bn folds."""
    (tmp_path / "net.dl").write_text(DECLINED)
    o0 = compile_to_module(tmp_path / "net.dl", tmp_path, opt_level=0, name="net_o0")
    o2 = compile_to_module(tmp_path / "net.dl", tmp_path, opt_level=2, name="net_o2")
    images = torch.randn(2, 3, 16, 16)
    reference = _randomized(o0.Net(), (images,))
    model = o2.Net()
    model.load_state_dict(reference.state_dict())
    assert o2.Net.CONV_BN_FOLDS == (("stem", "stem_bn"),)
    model.optimize_for_inference()
    assert isinstance(model.stem_bn, nn.Identity)
    assert all(isinstance(getattr(model, n), nn.BatchNorm2d) for n in ("a_bn", "b_bn", "side_bn"))
    with torch.no_grad():
        _assert_same(model(images), reference(images), atol=FOLDED_ATOL, rtol=FOLDED_RTOL)


def test_o1_models_have_no_optimize_for_inference():
    text = compile_spec(ROOT / "specs" / "resnet.dl", overrides=RESNET18).text
    assert "optimize_for_inference" not in text and "CONV_BN_FOLDS" not in text


# ------------------------------------------------------------------ torch.compile and torch.export
TRACED = ["resnet18", "bert"]


def _built(tmp_path_factory, case: str, level: int):
    reference, _, model, inputs = _pair(tmp_path_factory, case)
    if level == 0:
        return reference, reference, inputs
    return reference, model.optimize_for_inference(), inputs


@pytest.mark.slow                                # inductor's first compile of ResNet-18 takes ~13 s
@pytest.mark.parametrize("level", [0, 2])
@pytest.mark.parametrize("case", TRACED)
def test_torch_compile(tmp_path_factory, case, level):
    reference, model, inputs = _built(tmp_path_factory, case, level)
    torch._dynamo.reset()
    compiled = torch.compile(model)
    with torch.no_grad():
        _assert_same(compiled(*inputs), reference(*inputs), **_tolerance(case))


@pytest.mark.parametrize("level", [0, 2])
@pytest.mark.parametrize("case", TRACED)
def test_torch_export(tmp_path_factory, case, level):
    reference, model, inputs = _built(tmp_path_factory, case, level)
    exported = torch.export.export(model, inputs)
    with torch.no_grad():
        _assert_same(exported.module()(*inputs), reference(*inputs), **_tolerance(case))


def test_generated_o2_code_is_lint_clean(tmp_path):
    ruff = Path(sys.executable).parent / "ruff"
    if not ruff.exists():
        pytest.skip("ruff is not installed")
    names = set()
    for spec in ("resnet", "gpt2", "t5"):
        text = compile_spec(ROOT / "specs" / f"{spec}.dl", opt_level=2).text
        (tmp_path / f"{spec}.py").write_text(text)
        names |= imported_runtime_names(text)
    (tmp_path / f"{RUNTIME_MODULE}.py").write_text(runtime_module(names, __version__))   # as dlc compile writes it
    result = subprocess.run([str(ruff), "check", "--no-cache", str(tmp_path)], cwd=ROOT, capture_output=True,
                            text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
