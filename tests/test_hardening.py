"""Issue 14's reproducers: every one is a diagnostic with a code (or a correct result), never an
internal error, a traceback, or generated code that does not run."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from compiler.cli import main
from compiler.driver import check, compile_spec
from compiler.elaborate.limits import Limits
from compiler.elaborate.resolve import resolve_file
from tests.helpers import compile_to_module

TIME_BOUND_S = 10.0          # CPU seconds; the runaway inputs below ran for minutes or forever


def _model(body: str, params: str = "d: int = 4") -> str:
    return f"model M({params}) {{\n  in x: [B, d]\n  in z: [B, d]\n{body}\n  out y = x\n}}\n"


def _codes(tmp_path: Path, text: str, overrides: dict | None = None, name: str = "spec") -> list[str]:
    path = tmp_path / f"{name}.dl"
    path.write_text(text)
    result = compile_spec(path, overrides=overrides)
    assert result.ok or result.text is None
    return [d.code for d in result.diagnostics]


@pytest.mark.parametrize("line, code", [
    ("let e = 1e200 ** 2.0", "DLC011"),          # OverflowError
    ("let e = 0 ** -1", "DLC046"),               # ZeroDivisionError: division-by-zero
    ("let e = 0.0 ** -1.5", "DLC046"),
    ("let e = int(1e308 * 10.0)", "DLC011"),     # inf, then OverflowError in int()
    ("let e = float(2 ** 62) ** 20", "DLC011"),
    ("let e = (0 - 8.0) ** 0.5", "DLC011"),      # a complex number
    ("let e = int(1e300)", "DLC013"),            # a 301-digit int
    ("let e = 2 ** 62 * 4", "DLC013"),
    ("let e = sqrt(0 - 1)", "DLC011"),
    ("a = x / 1e-320", "DLC011"),                 # a factor of inf
    ("a = x * (1e308 * 10.0)", "DLC011"),
])
def test_compile_time_arithmetic_is_total(tmp_path, line, code):
    assert _codes(tmp_path, _model("  " + line)) == [code]


def test_arithmetic_errors_exit_1_not_3(tmp_path, capsys):
    path = tmp_path / "spec.dl"
    path.write_text(_model("  let e = 1e200 ** 2.0"))
    assert main(["check", str(path)]) == 1
    assert "internal error" not in capsys.readouterr().err


SIZED = "model M(d: int = 4, eps: float = 1e-5) {\n  in x: [B, d]\n  out y = LayerNorm(d, eps=eps)(x)\n}\n"


@pytest.mark.parametrize("overrides, code", [
    ({"eps": float("inf")}, "DLC011"), ({"eps": float("nan")}, "DLC011"), ({"eps": -float("inf")}, "DLC011"),
    ({"d": 10**30}, "DLC013"), ({"d": 2**62 + 1}, "DLC013"),
])
def test_non_finite_and_huge_values_from_d_never_reach_the_source(tmp_path, overrides, code):
    assert _codes(tmp_path, SIZED, overrides) == [code]


def test_d_inf_on_the_command_line_is_a_diagnostic(tmp_path, capsys):
    path = tmp_path / "spec.dl"
    path.write_text(SIZED)
    assert main(["compile", str(path), "-o", str(tmp_path / "out"), "-D", "eps=inf"]) == 1
    assert "error[DLC011]" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_a_300_digit_literal_is_dlc013(tmp_path):
    assert _codes(tmp_path, _model(f"  let e = {'9' * 300}")) == ["DLC013"]


def test_finite_extremes_still_compile_and_run(tmp_path):
    module = compile_to_module(SIZED, tmp_path, overrides={"eps": 1e-300})
    assert torch.isfinite(module.M()(torch.randn(2, 4))).all()


def test_a_repeated_rename_placeholder_is_a_diagnostic(tmp_path):
    text = ('model M(d: int = 4) {\n  in x: [B, d]\n  rename "enc.{i}.sub.{i}." -> "layers.{i}."\n'
            "  out y = Linear(d, d)(x)\n}\n")
    assert _codes(tmp_path, text) == ["DLC039"]


# ---------------------------------------------------------------------- runaway inputs
def _bounded(tmp_path: Path, text: str) -> list[str]:
    start = time.process_time()
    codes = _codes(tmp_path, text)
    assert time.process_time() - start < TIME_BOUND_S
    return codes


def test_string_doubling_stops_at_the_sequence_limit(tmp_path):
    lets = "\n".join(f"  let s{i + 1} = s{i} + s{i}" for i in range(40))
    assert _bounded(tmp_path, _model('  let s0 = "ab"\n' + lets)) == ["DLC013"]


def test_list_doubling_stops_at_the_sequence_limit(tmp_path):
    lets = "\n".join(f"  let s{i + 1} = s{i} + s{i}" for i in range(40))
    assert _bounded(tmp_path, _model("  let s0 = [1, 2]\n" + lets)) == ["DLC013"]


def _nested_loops(inner: str) -> str:
    return _model(f"  for i in range(65536) {{\n    for j in range(65536) {{\n      {inner}\n    }}\n  }}")


@pytest.mark.slow      # the whole 500,000-step budget, 2 s a case: the test below is the fast lane's stand-in
@pytest.mark.parametrize("inner", ["let k = i", ""])
def test_nested_loops_stop_at_the_step_budget(tmp_path, inner):
    assert _bounded(tmp_path, _nested_loops(inner)) == ["DLC013"]


@pytest.mark.parametrize("inner", ["let k = i", ""])
def test_nested_loops_stop_at_a_smaller_step_budget(tmp_path, inner):
    """The loops above at a budget of 5,000 steps instead of 500,000 (the fast lane's stand-in: the
    default budget runs 2 s a case): every iteration counts, an empty body's included, and the
    compile stops at the budget with its DLC013."""
    path = tmp_path / "spec.dl"
    path.write_text(_nested_loops(inner))
    _, diagnostics = resolve_file(path, limits=Limits(max_steps=5_000))
    assert [d.code for d in diagnostics] == ["DLC013"] and "exceeds 5,000 steps" in diagnostics[0].message


def test_blocks_that_each_use_the_next_twice_check_in_linear_time(tmp_path):
    """2**30 instances of B30, 31 specializations: the instance walk visits each graph once."""
    levels = 30
    blocks = "".join(f"block B{k}(d: int = 2) {{\n  in x: [N, d]\n  a = B{k + 1}(d)(x)\n  out y = B{k + 1}(d)(a)\n}}\n"
                     for k in range(levels))
    blocks += f"block B{levels}(d: int = 2) {{\n  in x: [N, d]\n  out y = Linear(d, d)(x)\n}}\n"
    start = time.process_time()
    path = tmp_path / "spec.dl"
    path.write_text(blocks + "model M() {\n  in x: [N, 2]\n  out y = B0(2)(x)\n}\n")
    result = check(path)
    assert time.process_time() - start < TIME_BOUND_S and result.ok


def test_a_1500_import_chain_is_dlc013_not_a_recursion_error(tmp_path, capsys):
    for i in range(1500):
        (tmp_path / f"m{i}.dl").write_text((f"import m{i + 1}\n" if i < 1499 else "")
                                           + f"block B{i}(d: int = 2) {{\n  in x: [N, d]\n  out x\n}}\n")
    (tmp_path / "top.dl").write_text("import m0\nmodel M() {\n  in x: [N, 2]\n  out y = B0(2)(x)\n}\n")
    assert main(["check", str(tmp_path / "top.dl")]) == 1
    err = capsys.readouterr().err
    assert "error[DLC013]" in err and "imports chained deeper than 64" in err


def test_300_imported_modules_pass_no_longer_the_256_module_limit(tmp_path):
    for i in range(300):
        (tmp_path / f"m{i}.dl").write_text(f"block B{i}(d: int = 2) {{\n  in x: [N, d]\n  out x\n}}\n")
    imports = "import " + ", ".join(f"m{i}" for i in range(300))
    codes = _codes(tmp_path, imports + "\nmodel M() {\n  in x: [N, 2]\n  out y = B0(2)(x)\n}\n", name="top")
    assert "DLC013" in codes


def test_the_file_size_limit_counts_bytes_not_characters(tmp_path):
    comment = "# " + "é" * 1_100_000 + "\n"           # 1.1 million characters, 2.2 MB
    assert _codes(tmp_path, comment + SIZED) == ["DLC013"]


# ---------------------------------------------------------------------- load hooks
def _mha_spec(tmp_path: Path) -> Path:
    path = tmp_path / "mha.dl"
    path.write_text("import attention\nmodel M(d: int = 8) {\n  in x: [B, S, d]\n"
                    "  out y = MultiHeadAttention(d, 2)(x, x)\n}\n")
    return path


def test_the_fused_qkv_load_hook_checks_each_tensor(tmp_path):
    """-O2 fuses query/key/value; a checkpoint whose q and k have the wrong rows but the right
    total must be rejected as -O0 rejects it (issue 14: it loaded)."""
    spec = _mha_spec(tmp_path)
    plain = compile_to_module(spec, tmp_path, opt_level=0, name="o0").M()
    fused = compile_to_module(spec, tmp_path, opt_level=2, name="o2").M()
    state = plain.state_dict()
    fused.load_state_dict(state)                                # the right sizes load
    x = torch.randn(2, 3, 8)
    plain.eval(), fused.eval()
    torch.testing.assert_close(fused(x), plain(x))
    prefix = next(k for k in state if k.endswith("query.weight"))[: -len("query.weight")]
    wrong = dict(state)
    wrong[prefix + "query.weight"] = torch.randn(10, 8)        # 10 + 6 + 8 = 24 rows, as 8 + 8 + 8
    wrong[prefix + "key.weight"] = torch.randn(6, 8)
    with pytest.raises(RuntimeError, match="size mismatch"):
        plain.load_state_dict(wrong)
    with pytest.raises(RuntimeError, match="size mismatch"):
        fused.load_state_dict(wrong)
