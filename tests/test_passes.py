"""The optimization passes, proven by behaviour: the same spec compiled at -O0
and with the passes, the same random weights (load_state_dict) and the same
inputs give the same outputs, while the generated code loses what the pass
removes."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from compiler.driver import check, compile_spec
from compiler.ir import dump, verify
from compiler.passes import PASS_NAMES, PIPELINE, optimize, select_passes
from tests.helpers import ROOT, compile_to_module, import_source

IDENTITIES = """
block Body(d: int, p: float = 0.0) {
    in x: [B, S, d]
    h = Linear(d, d)(x)
    dead = Linear(d, 2 * d)(h)
    dead_act = ReLU()(dead)
    z = Dropout(0.0)(h)
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
    return import_source(result.text, tmp_path, "passes"), result.text


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
    assert "return MOutput(y=body, passthrough=x)" in o1


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
    # -O0 only writes activations and residual sums in place, as hand-written PyTorch does.
    assert [p.name for p in select_passes(0)] == ["inplace"]
    training = [p for p in PIPELINE if not p.inference_only]
    assert [p.name for p in select_passes(1)] == [p.name for p in training if p.level <= 1]
    assert [p.name for p in select_passes(2)] == [p.name for p in training]
    assert [p.name for p in select_passes(2, inference=True)] == PASS_NAMES
    assert [p.name for p in select_passes(1, disable=["dead-code"])] == [p.name for p in training
                                                                          if p.level <= 1 and p.name != "dead-code"]
    assert [p.name for p in select_passes(0, enable=["dead-code"])] == ["dead-code", "inplace"]
    assert select_passes(0, disable=["inplace"]) == []
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
    summary = {line.split(": ")[0]: line.split(": ")[1] for line in log if not line.startswith("  ")}
    assert summary["remove-identities"] == "changed Body, M"
    assert summary["dead-code"] == "changed Body, M"
    assert summary["fuse-projections"] == summary["sdpa"] == summary["cse"] == "no change"
    assert list(summary) == [p.name for p in select_passes(2)]
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


_SHARED: dict[tuple, object] = {}


def _shared_module(model_name: str, source: Path, tmp_path: Path, passes):
    """The sweep below compiles each spec at -O0 and through the whole -O2 pipeline for every pass:
    those modules are compiled once per worker (the models are built afresh from them each time)."""
    key = (model_name, tuple(p.name for p in passes))
    if key not in _SHARED:
        _SHARED[key] = module_with(source, tmp_path, passes, _SPECS[model_name][1])[0]
    return _SHARED[key]


@pytest.mark.parametrize("pass_name", PASS_NAMES)
@pytest.mark.parametrize("model_name", _SPECS)
def test_every_pass_preserves_numerics(tmp_path, pass_name, model_name):
    """Each registered pass alone, and the full -O2 pipeline, against -O0 on the same weights."""
    source, overrides = _SPECS[model_name]
    if isinstance(source, str):
        (tmp_path / "identities.dl").write_text(source)
        source = tmp_path / "identities.dl"
    torch.manual_seed(0)
    reference_module = _shared_module(model_name, source, tmp_path, [])
    (public,) = reference_module.__all__
    reference = getattr(reference_module, public)().eval()
    inputs = _inputs(model_name)
    for passes in ([p for p in PIPELINE if p.name == pass_name], select_passes(2)):
        optimized = getattr(_shared_module(model_name, source, tmp_path, passes), public)().eval()
        same_weights(reference, optimized)
        with torch.no_grad():
            outputs_equal(reference(*inputs), optimized(*inputs), exact=False)


# ---------------------------------------------------------------------- chains, CSE, inference builds
TRANSPOSES = """
model Transposes(d: int = 8) {
    in x: [B, S, d]
    in y: [B, S, d, 2]
    swapped = Transpose(1, 2)(x)
    back = Transpose(2, 1)(swapped)
    permuted = Permute([0, 2, 3, 1])(y)
    restored = Permute([0, 3, 1, 2])(permuted)
    kept = Transpose(1, 2)(x)
    undone = Transpose(-1, -2)(kept)
    not_inverse = Permute([0, 2, 3, 1])(permuted)
    out a = Linear(d, d)(back) + undone
    out b = restored
    out c = ReLU()(kept)
    out e = not_inverse
}
"""

RESHAPES = """
model Reshapes(d: int = 8) {
    in x: [B, S, d]
    split = Reshape([B, S, 2, d // 2])(x)
    regrouped = Reshape([B, S * 2, d // 2])(split)
    flat = Flatten(1, 2)(regrouped)
    halves = Reshape([B, S, 2, d // 2])(x)
    whole = Reshape([B, S, d])(halves)
    pieces = Reshape([B, S, 4, d // 4])(x)
    merged = Flatten(2)(pieces)
    out a = flat
    out b = whole + x
    out c = pieces
    out e = merged
}
"""

SCALES = """
model Scales(d: int = 8) {
    in x: [B, d]
    doubled = x * 2.0
    quartered = doubled * 0.25
    scaled = quartered * 3.0
    up = x * 4.0
    down = up * 0.25
    tripled = x * 3.0
    sixfold = tripled * 2.0
    out a = scaled
    out b = down + tripled
    out c = sixfold
}
"""

REPEATS = """
model Repeats(d: int = 8) {
    in x: [B, S, d]
    in mask: [B, S] bool
    first = ReLU()(x)
    second = ReLU()(x)
    left = first + x
    right = x + second
    left_t = Transpose(1, 2)(left)
    right_t = Transpose(1, 2)(right)
    q = Linear(d, d)(x)
    k = Linear(d, d)(x)
    plain = Attention(2)(q, k, k, mask)
    plain_again = Attention(2)(q, k, k, mask)
    dropped = Attention(2, 0.1)(q, k, k, mask)
    dropped_again = Attention(2, 0.1)(q, k, k, mask)
    shared = Linear(d, d)
    once = shared(x)
    twice = shared(x)
    out a = left_t - right_t
    out b = plain + plain_again
    out c = dropped - dropped_again
    out e = once + twice
}
"""

DROPPING = """
model Dropping(d: int = 8) {
    in x: [B, S, d]
    in mask: [B, S] bool optional
    h = Dropout(0.3)(Linear(d, d)(x))
    context = Attention(2, 0.2)(h, h, h, mask)
    rnn, last = GRU(d, d, num_layers=2, dropout=0.25)(context)
    out y = Dropout(0.1)(rnn)
}
"""


def _pass(name: str):
    return [p for p in PIPELINE if p.name == name]


def _forward(text: str) -> str:
    return text[text.index("def forward"):]


def _proven(tmp_path, source: str, passes, inputs, name: str):
    """Compile `source` without passes and with `passes`; outputs agree on the same weights in
    eval mode.  Returns the optimized forward's source and the optimization log."""
    path = tmp_path / f"{name}.dl"
    path.write_text(source)
    torch.manual_seed(0)
    reference_module, _ = module_with(path, tmp_path, [])
    optimized_module, text = module_with(path, tmp_path, passes)
    (public,) = reference_module.__all__
    reference, optimized = getattr(reference_module, public)().eval(), getattr(optimized_module, public)().eval()
    same_weights(reference, optimized)
    with torch.no_grad():
        outputs_equal(reference(*inputs), optimized(*inputs), exact=False)
    return _forward(text), compile_spec(path, passes=passes).log


def test_transposes_that_undo_each_other_cancel(tmp_path):
    x, y = torch.randn(2, 5, 8), torch.randn(2, 5, 8, 2)
    forward, log = _proven(tmp_path, TRANSPOSES, _pass("cancel-transposes"), (x, y), "transposes")
    assert "self.linear(x)" in forward and "return TransposesOutput(a=a, b=y, c=c, e=not_inverse)" in forward
    assert forward.count(".transpose(") == 1 and "kept = x.transpose(1, 2)" in forward      # `kept` has 2 uses
    assert forward.count(".permute(") == 2                                     # the non-inverse pair stays
    assert any("removed Transpose(dim0=1, dim1=2) at " in line and "transposes.dl:5:" in line and
               "they cancel" in line for line in log)
    assert any("removed Transpose(dim0=-1, dim1=-2)" in line and "which stays for its other uses" in line
               for line in log)


def test_reshape_chains_collapse_to_one_reshape(tmp_path):
    forward, log = _proven(tmp_path, RESHAPES, _pass("collapse-reshapes"), (torch.randn(2, 5, 8),), "reshapes")
    assert "flat = x.reshape(B, -1)" in forward                        # Reshape, Reshape, Flatten -> one
    assert "b = x + x" in forward                                       # there and back: nothing left
    assert "pieces = x.reshape(B, S, 4, self.d // 4)" in forward and "torch.flatten(pieces, 2, -1)" in forward
    assert any(line.startswith("  declined Reshape(shape=[B, S, 4, 2])") and "other uses" in line for line in log)


def test_reshape_chain_keeps_the_spans_it_replaced(tmp_path):
    path = tmp_path / "reshapes.dl"
    path.write_text(RESHAPES)
    optimized, _ = optimize(check(path).program, _pass("collapse-reshapes"), check=True)
    flat = next(n for n in optimized.graphs["Reshapes"].ordered() if n.outputs == ("flat",))
    assert flat.op == "Reshape" and sorted(s.line for s in flat.derived_from) == [4, 5]


def test_consecutive_scales_fold_into_one(tmp_path):
    forward, log = _proven(tmp_path, SCALES, _pass("fold-scales"), (torch.randn(3, 8),), "scales")
    assert "scaled = x * 1.5" in forward                                # x * 2 * 0.25 * 3
    assert "b = x + tripled" in forward                                 # x * 4 * 0.25 is x
    assert "sixfold = tripled * 2.0" in forward                         # `tripled` is read twice
    assert any("folded Scale(factor=2.0)" in line and "into Scale(factor=0.5)" in line for line in log)
    assert any("declined Scale(factor=3.0)" in line for line in log)


def test_cse_merges_pure_repeats_but_not_random_ops_or_layers(tmp_path):
    x, mask = torch.randn(2, 5, 8), torch.ones(2, 5, dtype=torch.bool)
    mask[1, 3:] = False
    forward, log = _proven(tmp_path, REPEATS, _pass("cse"), (x, mask), "repeats")
    assert forward.count("F.relu(") == 1 and forward.count(".transpose(1, 2)  #") == 1
    assert "a = left_t - left_t" in forward                             # x + relu(x) == relu(x) + x, to a fixpoint
    assert "b = plain + plain" in forward                               # attention without dropout is pure
    assert "c = dropped - dropped_again" in forward                     # with dropout it is random
    assert "once = self.shared(x)" in forward and "twice = self.shared(x)" in forward     # a layer's calls stay
    merged = [line for line in log if line.startswith("  merged")]
    assert len(merged) == 4 and "merged ReLU() at " in merged[0] and "into `first` (" in merged[0]
    assert "repeats.dl:6:" in merged[0] and "repeats.dl:5:" in merged[0]
    declined = [line for line in log if line.startswith("  declined")]
    assert len(declined) == 2 and "random or stateful" in declined[0] and "`shared`" in declined[1]


def test_cse_is_level_2_and_keeps_spans(tmp_path):
    assert "cse" not in [p.name for p in select_passes(1)] and "cse" in [p.name for p in select_passes(2)]
    path = tmp_path / "repeats.dl"
    path.write_text(REPEATS)
    optimized, _ = optimize(check(path).program, _pass("cse"), check=True)
    first = next(n for n in optimized.graphs["Repeats"].ordered() if n.outputs == ("first",))
    assert [s.line for s in first.derived_from] == [6]


def test_drop_dropout_only_in_inference_builds(tmp_path):
    path = tmp_path / "dropping.dl"
    path.write_text(DROPPING)
    assert "drop-dropout" not in [p.name for p in select_passes(2)]
    assert "drop-dropout" in [p.name for p in select_passes(1, inference=True)]
    assert [p.name for p in select_passes(0, inference=True)] == ["inplace"]
    with pytest.raises(ValueError, match="only for inference builds"):
        select_passes(1, enable=["drop-dropout"])
    training = compile_spec(path, opt_level=1).text
    assert "nn.Dropout(0.3)" in training and "dropout=0.25" in training and "F.dropout(" in training
    inference = compile_spec(path, opt_level=1, inference=True)
    assert "Dropout" not in inference.text and "dropout" not in _forward(inference.text)
    assert "nn.GRU(d, d, num_layers=2, batch_first=True)" in inference.text
    assert f"  removed Dropout(p=0.3) at {path}:5:9 in Dropping: inference build" in inference.log
    assert any(line.startswith("  set dropout=0.0 on Attention(heads=2, dropout=0.2)") for line in inference.log)


def test_an_inference_build_computes_what_eval_mode_does(tmp_path):
    x = torch.randn(2, 5, 8)
    forward, _ = _proven(tmp_path, DROPPING, select_passes(2, inference=True), (x, None), "dropping")
    assert "Dropout" not in forward


def test_cli_inference_flag(capsys, tmp_path):
    from compiler.cli import main
    path = tmp_path / "dropping.dl"
    path.write_text(DROPPING)
    assert main(["compile", str(path), "-o", str(tmp_path / "out"), "--inference", "--explain"]) == 0
    out, _ = capsys.readouterr()
    assert "drop-dropout: changed Dropping" in out and "removed Dropout(p=0.1) at " in out
    assert "nn.Dropout" not in (tmp_path / "out" / "dropping.py").read_text()
    assert main(["compile", str(path), "-o", str(tmp_path / "out2")]) == 0
    assert "nn.Dropout(0.3)" in (tmp_path / "out2" / "dropping.py").read_text()
    assert main(["compile", str(path), "-o", str(tmp_path / "out3"), "--passes", "drop-dropout"]) == 2
    _, err = capsys.readouterr()
    assert "drop-dropout is only for inference builds; add --inference" in err
    assert not (tmp_path / "out3").exists()


# ---------------------------------------------------------------------- inplace
@pytest.mark.parametrize("spec, cls, overrides, shape", [
    ("resnet", "ResNet", {"depth": 18, "num_classes": 10}, (2, 3, 64, 64)),
    ("mobilenet", "MobileNetV2", {"num_classes": 10, "dropout": 0.0}, (2, 3, 64, 64)),
])
def test_inplace_ops_change_nothing_in_eval_or_training(tmp_path, spec, cls, overrides, shape):
    """The `inplace` pass overwrites dead inputs; outputs and gradients stay bit-for-bit."""
    import torch

    from compiler.driver import compile_spec
    from tests.helpers import ROOT, import_source

    path = ROOT / "specs" / f"{spec}.dl"
    with_pass = compile_spec(path, opt_level=0, overrides=overrides)
    without = compile_spec(path, opt_level=0, overrides=overrides, disable=["inplace"])
    assert "inplace=True" in with_pass.text and "inplace=True" not in without.text
    a = getattr(import_source(with_pass.text, tmp_path, "with_inplace"), cls)()
    b = getattr(import_source(without.text, tmp_path, "without_inplace"), cls)()
    b.load_state_dict(a.state_dict())
    x = torch.randn(*shape)
    for train in (True, False):
        a.train(train), b.train(train)
        out_a, out_b = a(x), b(x)
        assert torch.equal(out_a, out_b)
    out_a.sum().backward()
    out_b.sum().backward()
    grads_b = dict(b.named_parameters())
    for name, p in a.named_parameters():
        assert torch.equal(p.grad, grads_b[name].grad), name
