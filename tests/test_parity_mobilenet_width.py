"""MobileNetV2's width multiplier (specs/mobilenet.dl, width_mult) against torchvision's
mobilenet_v2(width_mult=...): parameter counts and keys for narrow and wide networks,
strict loading and eval-mode outputs on the same weights, and the rounding builtin."""
from __future__ import annotations

import pytest
import torch

from tests.helpers import ROOT, compile_to_module, rename_reference_keys
from tests.test_parity_vision import count, randomize, shapes

ATOL, RTOL = 1e-5, 1e-4


def reference(width_mult: float):
    import torchvision
    return torchvision.models.mobilenet_v2(width_mult=width_mult)


_COMPILED: dict[float, object] = {}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """width_mult -> the spec compiled with it, once each."""
    def get(width_mult: float):
        if width_mult not in _COMPILED:
            _COMPILED[width_mult] = compile_to_module(
                ROOT / "specs" / "mobilenet.dl", tmp_path_factory.mktemp("mnv2"), {"width_mult": width_mult},
                name=f"mobilenet_w{int(width_mult * 100)}")
        return _COMPILED[width_mult]
    return get


@pytest.mark.parametrize("width_mult", [0.35, 0.5, 0.75, 1.4])
def test_parameters_and_keys(compiled, width_mult):
    module = compiled(width_mult)
    with torch.device("meta"):
        theirs, ours = reference(width_mult), module.MobileNetV2()
    assert count(ours) == count(theirs)
    assert shapes(rename_reference_keys(ours, theirs.state_dict())) == shapes(ours.state_dict())


@pytest.mark.parametrize("width_mult", [0.5, 1.4])
def test_outputs_match(compiled, width_mult):
    module = compiled(width_mult)
    torch.manual_seed(0)
    theirs = randomize(reference(width_mult), (2, 3, 96, 96))
    ours = module.MobileNetV2()
    result = ours.load_reference_state_dict(theirs.state_dict())             # strict
    assert not result.missing_keys and not result.unexpected_keys
    images = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(images), theirs(images), atol=ATOL, rtol=RTOL)


def test_make_divisible_rounds_like_torchvision():
    from torchvision.models._utils import _make_divisible

    from compiler.elaborate.evaluate import BUILTINS
    for value in [3.2, 8.0, 11.9, 12.0, 16 * 0.35, 24 * 0.75, 320 * 1.4, 1280 * 0.35, 100.0, 4.0]:
        assert BUILTINS["make_divisible"](value, 8) == _make_divisible(value, 8), value
