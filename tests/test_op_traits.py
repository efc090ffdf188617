"""Op knowledge as data: activations are one registry entry each, the DSL's built-in
`activation` parameter type takes its values from the registry, and the passes
read traits instead of lists of op names."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from compiler.driver import compile_spec
from compiler.ops import NAMED_ENUMS, REGISTRY
from compiler.ops.activation import ACTIVATIONS
from tests.helpers import ROOT, compile_to_module

NEW_ACTIVATIONS = """
block Gated(d: int, act: activation = "hardswish") {
    in x: [B, d]
    h = Linear(d, d)(x)
    out y = Activation(act)(h)
}

model M(d: int = 8, act: activation = "hardswish") {
    in x: [B, d]
    a = Hardswish()(Linear(d, d)(x))
    b = Hardsigmoid()(Linear(d, d)(x))
    out y = Gated(d, act)(a * b)
}
"""


def _reference(model: torch.nn.Module, x: torch.Tensor, act: torch.nn.Module) -> torch.Tensor:
    """The same network written by hand with torch's own activation modules."""
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    a = torch.nn.Hardswish()(layers[0](x))
    b = torch.nn.Hardsigmoid()(layers[1](x))
    return act(layers[2](a * b))


def _models(tmp_path: Path, opt_level: int, act: str = "hardswish", train: bool = False):
    """The spec at -O0 (the reference reads its Linear layers) and at `opt_level` (fused
    projections and all) with the same weights, loaded through the checkpoint hooks."""
    plain = compile_to_module(NEW_ACTIVATIONS, tmp_path, overrides={"act": act}, opt_level=0).M()
    model = compile_to_module(NEW_ACTIVATIONS, tmp_path, overrides={"act": act}, opt_level=opt_level).M()
    model.load_state_dict(plain.state_dict())
    return plain.train(train), model.train(train)


@pytest.mark.parametrize("act, reference", [("hardswish", torch.nn.Hardswish()), ("hardsigmoid", torch.nn.Hardsigmoid()),
                                            ("gelu_tanh", torch.nn.GELU(approximate="tanh"))])
@pytest.mark.parametrize("opt_level", [0, 2])
def test_new_activations_match_torch_modules(tmp_path, act, reference, opt_level):
    plain, model = _models(tmp_path, opt_level, act)
    x = torch.randn(4, 8) * 4             # past +-3, where the hard functions saturate
    with torch.no_grad():
        torch.testing.assert_close(model(x), _reference(plain, x, reference))


def test_in_place_hardswish_trains_like_the_out_of_place_one(tmp_path):
    """The inplace pass overwrites Linear outputs with Hardswish (its trait says torch can);
    gradients equal those of torch's out-of-place modules on the same weights."""
    result = compile_spec(_write(tmp_path, NEW_ACTIVATIONS), opt_level=1)
    assert "F.hardswish(linear, inplace=True)" in result.text
    assert "F.hardsigmoid(linear_1, inplace=True)" in result.text
    plain, model = _models(tmp_path, 1, train=True)
    x = torch.randn(4, 8) * 4
    model(x).sum().backward()
    _reference(plain, x, torch.nn.Hardswish()).sum().backward()
    for (name, got), want in zip(model.named_parameters(), plain.parameters()):
        torch.testing.assert_close(got.grad, want.grad, msg=name)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.dl"
    path.write_text(text)
    return path


def test_activation_parameter_type_takes_every_registered_kind():
    assert tuple(NAMED_ENUMS["activation"]) == tuple(ACTIVATIONS)
    assert {"relu", "gelu", "gelu_tanh", "silu", "relu6", "identity", "hardswish", "hardsigmoid"} <= set(ACTIVATIONS)


def test_activation_parameter_rejects_an_unknown_kind_with_a_suggestion(tmp_path):
    result = compile_spec(_write(tmp_path, NEW_ACTIVATIONS), overrides={"act": "hardswich"})
    assert not result.ok and result.text is None
    [d] = result.diagnostics
    assert d.code == "DLC005"
    assert "parameter `act` must be one of" in d.message and '"hardsigmoid"' in d.message
    assert "hardswish" in (d.hint or "")


def test_activation_op_rejects_an_unknown_kind(tmp_path):
    spec = 'model M() {\n    in x: [B, 4]\n    out y = Activation("swish")(x)\n}\n'
    result = compile_spec(_write(tmp_path, spec))
    [d] = result.diagnostics
    assert d.code == "DLC005" and "Activation argument `kind`" in d.message and '"silu"' in d.message
    assert (d.span.line, d.span.col) == (3, 24)


def test_stdlib_spells_out_no_activation_list():
    for path in sorted((ROOT / "stdlib").glob("*.dl")):
        for line in path.read_text().splitlines():
            enum = re.search(r"\{([^}]*)\}", line)
            if enum and '"' in enum.group(1):
                kinds = set(re.findall(r'"(\w+)"', enum.group(1)))
                assert not kinds & set(ACTIVATIONS), f"{path.name}: `{line.strip()}` lists activations"


def test_passes_name_no_activation_or_arithmetic_op():
    """Passes read traits (OpDef.inplace, .commutative, .identity); a list of op names in a pass
    is a list to keep in step.  A rewrite rule's pattern names the op it rewrites (Scale in
    scales.py): that is the rule, not a list."""
    names = {n for n, op in REGISTRY.items() if op.elementwise} - {"Scale"}
    for path in sorted((ROOT / "compiler" / "passes").glob("*.py")):
        text = path.read_text()
        found = sorted(n for n in names if re.search(rf'"{n}"', text))
        assert not found, f"{path.name} names {found}; give the ops a trait instead"


def test_traits_of_the_arithmetic_ops():
    assert REGISTRY["Add"].commutative and REGISTRY["Mul"].commutative
    assert not REGISTRY["Sub"].commutative and not REGISTRY["MatMul"].commutative
    assert all(REGISTRY[n].elementwise for n in ("Add", "Sub", "Mul", "Div", "Scale", "ReLU", "Hardswish"))
    assert not REGISTRY["Softmax"].elementwise          # each result depends on its whole row
    linear = REGISTRY["Linear"]
    assert linear.has_parameters(linear.attrs(in_features=2, out_features=3))
    assert not REGISTRY["ReLU"].has_parameters(REGISTRY["ReLU"].attrs())
