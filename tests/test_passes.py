"""The optimization passes, proven by behaviour: the same spec compiled at -O0
and with the passes, the same random weights (load_state_dict) and the same
inputs give the same outputs, while the generated code loses what the pass
removes."""
from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path

import pytest
import torch

from compiler.driver import check, compile_spec
from compiler.ir import dump, verify
from compiler.passes import PASS_NAMES, PIPELINE, optimize, select_passes
from tests.helpers import ROOT, compile_to_module

_names = itertools.count()

IDENTITIES = """
block Body(d: int, p: float = 0.0) {
    in x: [B, S, d]
    h = Linear(d, d)(x)
    dead = Linear(d, 2 * d)(h)
    dead_act = ReLU()(dead)
    z = Dropout(p)(h)
    r = Reshape([B, S, d])(z)
    t = Transpose(1, 1)(r)
    s = t * 1.0
    a = Activation("identity")(s)
    f = Flatten(2, 2)(a)
    pm = Permute([0, 1, 2])(f)
    out y = LayerNorm(d)(pm)
}

model M(d: int = 8, use_extra: bool = false) {
    in x: [B, S, d]
    in spare: [B, d]
    if use_extra {
        extra_branch = Linear(d, d)(x)
        x2 = extra_branch + x
    } else {
        x2 = x
    }
    body = repeat(2) Body(d)(x2)
    unused_head = Linear(d, 3)(body)
    out y = Dropout(0.0)(body)
    out passthrough = Dropout(0.0)(x)
}
"""


def module_with(spec: Path, tmp_path: Path, passes, overrides: dict | None = None):
    """Compile with an explicit pass list and import the result."""
    result = compile_spec(spec, overrides=overrides, passes=passes)
    assert result.ok and result.text is not None, [d.message for d in result.diagnostics]
    name = f"dlc_passes_{next(_names)}"
    path = tmp_path / f"{name}.py"
    path.write_text(result.text)
    spec_obj = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec_obj)
    sys.modules[name] = module
    spec_obj.loader.exec_module(module)
    return module, result.text


def same_weights(reference: torch.nn.Module, optimized: torch.nn.Module) -> list[str]:
    """Copy the reference's weights; returns the keys the optimized model no longer has."""
    loaded = optimized.load_state_dict(reference.state_dict(), strict=False)
    assert loaded.missing_keys == [], loaded.missing_keys
    return sorted(loaded.unexpected_keys)


def outputs_equal(a, b, exact: bool = True) -> None:
    a, b = (a if isinstance(a, tuple) else (a,)), (b if isinstance(b, tuple) else (b,))
    assert len(a) == len(b)
    for x, y in zip(a, b):
        if exact:
            assert torch.equal(x, y)
        else:
            torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-4)


def generated_text(overrides: dict | None, opt_level: int, tmp_path: Path) -> str:
    path = tmp_path / "identities.dl"
    path.write_text(IDENTITIES)
    result = compile_spec(path, opt_level=opt_level, overrides=overrides)
    assert result.ok, [d.message for d in result.diagnostics]
    return result.text


# ---------------------------------------------------------------------- dead code and identities
def test_dead_code_and_identities_vanish_from_the_generated_code(tmp_path):
    o0, o1 = generated_text(None, 0, tmp_path), generated_text(None, 1, tmp_path)
    for text in ("self.dead = nn.Linear", "self.unused_head = nn.Linear", "nn.Dropout", ".reshape(",
                 ".transpose(1, 1)", "* 1.0", "torch.flatten(", ".permute(0, 1, 2)", "F.relu("):
        assert text in o0, text
        assert text not in o1, text
    assert "def forward(self, x: torch.Tensor, spare: torch.Tensor)" in o1      # inputs are the signature
    assert "return body, x" in o1


def test_static_if_untaken_branch_never_reaches_codegen(tmp_path):
    for level in (0, 1):
        assert "extra_branch" not in generated_text(None, level, tmp_path)
        assert "self.extra_branch = nn.Linear" in generated_text({"use_extra": True}, level, tmp_path)
    path = tmp_path / "identities.dl"
    assert "extra_branch" not in dump(check(path).program)


@pytest.mark.parametrize("overrides", [None, {"use_extra": True}])
def test_o1_matches_o0_on_the_same_weights(tmp_path, overrides):
    torch.manual_seed(0)
    m0 = compile_to_module(IDENTITIES, tmp_path, overrides=overrides, opt_level=0, name="o0").M()
    m1 = compile_to_module(IDENTITIES, tmp_path, overrides=overrides, opt_level=1, name="o1").M()
    for p in m0.parameters():
        torch.nn.init.normal_(p)
    dropped = same_weights(m0, m1)
    assert dropped == ["body.0.dead.bias", "body.0.dead.weight", "body.1.dead.bias", "body.1.dead.weight",
                       "unused_head.bias", "unused_head.weight"]
    x, spare = torch.randn(3, 5, 8), torch.randn(3, 8)
    for mode in ("eval", "train"):
        getattr(m0, mode)(), getattr(m1, mode)()
        outputs_equal(m0(x, spare), m1(x, spare))


def test_an_identity_that_is_an_output_returns_its_input(tmp_path):
    torch.manual_seed(0)
    m1 = compile_to_module(IDENTITIES, tmp_path, opt_level=1, name="o1").M().eval()
    x = torch.randn(2, 4, 8)
    _, passthrough = m1(x, torch.randn(2, 8))
    assert passthrough is x


def test_dead_code_inside_blocks_and_repeats_keeps_state_dict_names(tmp_path):
    torch.manual_seed(0)
    m0 = compile_to_module(IDENTITIES, tmp_path, opt_level=0, name="o0").M()
    m1 = compile_to_module(IDENTITIES, tmp_path, opt_level=1, name="o1").M()
    kept = set(m1.state_dict())
    assert kept == {k for k in m0.state_dict() if ".dead." not in k and not k.startswith("unused_head.")}
    assert {"body.0.h.weight", "body.1.y.bias"} <= kept


# ---------------------------------------------------------------------- the pass manager
def test_select_passes_by_level_and_name():
    assert select_passes(0) == []
    assert [p.name for p in select_passes(1)] == [p.name for p in PIPELINE if p.level <= 1]
    assert [p.name for p in select_passes(2)] == PASS_NAMES
    assert [p.name for p in select_passes(1, disable=["dead-code"])] == [p.name for p in PIPELINE
                                                                          if p.level <= 1 and p.name != "dead-code"]
    assert [p.name for p in select_passes(0, enable=["dead-code"])] == ["dead-code"]
    with pytest.raises(ValueError, match="unknown pass nope"):
        select_passes(1, enable=["nope"])


def test_optimize_leaves_the_typed_ir_untouched_and_keeps_it_valid(tmp_path):
    path = tmp_path / "identities.dl"
    path.write_text(IDENTITIES)
    result = check(path)
    before = dump(result.program)
    optimized, log = optimize(result.program, select_passes(2), check=True)
    assert dump(result.program) == before
    assert dump(optimized) != before
    assert log == ["remove-identities: changed Body, M", "fuse-projections: no change", "sdpa: no change",
                   "dead-code: changed Body, M"]
    for graph in optimized.graphs.values():
        verify(graph)


def test_removed_nodes_leave_their_spans_on_what_replaced_them(tmp_path):
    path = tmp_path / "identities.dl"
    path.write_text(IDENTITIES)
    optimized, _ = optimize(check(path).program, select_passes(1))
    h = next(n for n in optimized.graphs["Body"].ordered() if n.outputs == ("h",))
    assert sorted(s.line for s in h.derived_from) == [7, 8, 9, 10, 11, 12, 13]      # z, r, t, s, a, f, pm


_SPECS = {
    "identities": (IDENTITIES, {}),
    "tiny": (ROOT / "tests/golden/tiny.dl", {}),
    "transformer": (ROOT / "specs/transformer.dl", {"vocab": 50, "d_model": 32, "heads": 4, "d_ff": 64, "layers": 2,
                                                    "max_len": 64}),
}


def _inputs(model_name: str):
    if model_name == "transformer":
        src, tgt = torch.randint(0, 50, (2, 7)), torch.randint(0, 50, (2, 5))
        mask = torch.ones(2, 7, dtype=torch.bool)
        mask[1, 4:] = False
        return src, tgt, mask
    if model_name == "tiny":
        return (torch.randint(0, 50, (2, 6)),)
    return torch.randn(2, 4, 8), torch.randn(2, 8)


@pytest.mark.parametrize("pass_name", PASS_NAMES)
@pytest.mark.parametrize("model_name", _SPECS)
def test_every_pass_preserves_numerics(tmp_path, pass_name, model_name):
    """Each registered pass alone, and the full -O2 pipeline, against -O0 on the same weights."""
    source, overrides = _SPECS[model_name]
    if isinstance(source, str):
        (tmp_path / "identities.dl").write_text(source)
        source = tmp_path / "identities.dl"
    torch.manual_seed(0)
    reference_module, _ = module_with(source, tmp_path, [], overrides)
    (public,) = reference_module.__all__
    reference = getattr(reference_module, public)().eval()
    inputs = _inputs(model_name)
    for passes in ([p for p in PIPELINE if p.name == pass_name], select_passes(2)):
        optimized = getattr(module_with(source, tmp_path, passes, overrides)[0], public)().eval()
        same_weights(reference, optimized)
        with torch.no_grad():
            outputs_equal(reference(*inputs), optimized(*inputs), exact=False)
