"""Every optimization level computes the same function: -O0 and -O2 builds of
each spec, with the same weights and inputs, agree in eval mode (outputs) and in
training mode without dropout (outputs and gradients)."""
from __future__ import annotations

import copy

import pytest
import torch

from tests.helpers import ROOT, compile_to_module

ATOL, RTOL = 1e-5, 1e-4


def _transformer_inputs():
    src = torch.randint(0, 101, (3, 9))
    tgt = torch.randint(0, 101, (3, 6))
    mask = torch.ones(3, 9, dtype=torch.bool)
    mask[1, 5:] = False
    return [(src, tgt, mask), (src, tgt)]


CASES = {
    "transformer": ("Transformer", {"vocab": 101, "d_model": 32, "heads": 4, "d_ff": 64, "layers": 2,
                                    "dropout": 0.0}, _transformer_inputs),
}


def _pair(tmp_path, spec: str, overrides: dict):
    path = ROOT / "specs" / f"{spec}.dl"
    return (compile_to_module(path, tmp_path, overrides, opt_level=0, name=f"{spec}_o0"),
            compile_to_module(path, tmp_path, overrides, opt_level=2, name=f"{spec}_o2"))


def _as_tuple(out):
    return out if isinstance(out, tuple) else (out,)


@pytest.mark.parametrize("spec", sorted(CASES))
def test_o0_and_o2_agree(tmp_path, spec):
    cls_name, overrides, make_inputs = CASES[spec]
    o0, o2 = _pair(tmp_path, spec, overrides)
    torch.manual_seed(0)
    a = getattr(o0, cls_name)().eval()
    b = getattr(o2, cls_name)().eval()
    b.load_state_dict(a.state_dict(), strict=True)
    for inputs in make_inputs():
        with torch.no_grad():
            for x, y in zip(_as_tuple(a(*inputs)), _as_tuple(b(*inputs))):
                torch.testing.assert_close(y, x, atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("spec", sorted(CASES))
def test_gradients_agree_in_training(tmp_path, spec):
    cls_name, overrides, make_inputs = CASES[spec]
    o0, o2 = _pair(tmp_path, spec, overrides)
    torch.manual_seed(0)
    a, b = getattr(o0, cls_name)().train(), getattr(o2, cls_name)().train()
    b.load_state_dict(a.state_dict(), strict=True)
    inputs = make_inputs()[0]
    sum(o.float().sum() for o in _as_tuple(a(*inputs))).backward()
    sum(o.float().sum() for o in _as_tuple(b(*inputs))).backward()
    # -O2 may fuse layers: load -O0's gradients through -O2's checkpoint hooks to compare like with like.
    expected = copy.deepcopy(b)
    missing, unexpected = expected.load_state_dict({n: p.grad for n, p in a.named_parameters()}, strict=False)
    assert not unexpected and not [m for m in missing if m in dict(b.named_parameters())]
    expected_grads = dict(expected.named_parameters())
    for name, p in b.named_parameters():
        torch.testing.assert_close(p.grad, expected_grads[name], atol=1e-4, rtol=1e-3, msg=name)
