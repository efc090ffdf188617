"""Arithmetic with numbers, FloorDiv/Mod/Pow, unary math and reductions over several dims:
shape and dtype rules (type promotion included), their errors, and lowerings executed
against the torch functions they stand for."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from compiler.driver import check
from compiler.ops import REGISTRY
from tests.test_ops_core import B, S, infer, run_lowered, shape_error, tt


# ---------------------------------------------------------------------- tensor op number
@pytest.mark.parametrize("op, value, reverse, fn", [
    ("+", 3, False, lambda x: x + 3), ("-", 1, True, lambda x: 1 - x), ("-", 0.5, False, lambda x: x - 0.5),
    ("/", 6.0, True, lambda x: 6.0 / x), ("**", 2, False, lambda x: x ** 2), ("//", 2, False, lambda x: x // 2),
    ("%", 3, False, lambda x: x % 3), ("*", 3, False, lambda x: x * 3), ("**", 2.0, True, lambda x: 2.0 ** x),
])
def test_scalar_arith_lowering(op, value, reverse, fn):
    x = torch.randn(3, 4) + 4
    (y,) = run_lowered("ScalarArith", {"op": op, "value": value, "reverse": reverse}, [x], [tt(3, 4)])
    assert torch.equal(y, fn(x))


@pytest.mark.parametrize("dtype, op, value, expected", [
    ("int64", "+", 3, "int64"), ("int64", "+", 0.5, "float"), ("int64", "/", 2, "float"),
    ("int64", "//", 2, "int64"), ("int32", "%", 2, "int32"), ("float16", "+", 1, "float16"),
    ("float", "**", 2, "float"),
])
def test_scalar_arith_promotes_like_torch(dtype, op, value, expected):
    assert infer("ScalarArith", [tt(B, S, dtype=dtype)], op=op, value=value)[0] == tt(B, S, dtype=expected)
    x = torch.ones(2, 3, dtype={"int64": torch.int64, "int32": torch.int32, "float16": torch.float16,
                                "float": torch.float32}[dtype])
    (y,) = run_lowered("ScalarArith", {"op": op, "value": value}, [x], [tt(2, 3, dtype=dtype)])
    assert y.is_floating_point() == (expected != "int64" and expected != "int32")


def test_scalar_arith_errors():
    e = shape_error("ScalarArith", [tt(B, dtype="bool")], op="+", value=1)
    assert e.code == "DLC008" and "bool" in e.message and e.hint
    assert shape_error("ScalarArith", [tt(B)], op="/", value=0).code == "DLC046"
    assert infer("ScalarArith", [tt(B)], op="/", value=0, reverse=True)[0] == tt(B)    # 0 / x is fine


def test_scale_promotes_integer_tensors():
    assert infer("Scale", [tt(B, dtype="int64")], factor=0.5)[0] == tt(B)
    assert shape_error("Scale", [tt(B, dtype="bool")], factor=0.5).code == "DLC008"


# ---------------------------------------------------------------------- tensor op tensor
@pytest.mark.parametrize("name, fn", [("FloorDiv", torch.floor_divide), ("Mod", torch.remainder), ("Pow", torch.pow)])
def test_floor_div_mod_pow(name, fn):
    x, y = torch.rand(2, 1, 4) * 10 + 1, torch.rand(3, 4) * 3 + 1
    assert infer(name, [tt(2, 1, 4), tt(3, 4)])[0] == tt(2, 3, 4)
    (z,) = run_lowered(name, {}, [x, y], [tt(2, 1, 4), tt(3, 4)])
    assert torch.equal(z, fn(x, y))
    assert infer(name, [tt(B, dtype="int64"), tt(B, dtype="int64")])[0].dtype == "int64"
    assert infer(name, [tt(B, dtype="int64"), tt(B)])[0].dtype == "float"
    assert shape_error(name, [tt(B, 3), tt(B, 4)]).code == "DLC007"
    assert shape_error(name, [tt(B, dtype="bool"), tt(B)]).code == "DLC008"


def test_binary_promotion():
    assert infer("Add", [tt(B, dtype="int64"), tt(B)])[0].dtype == "float"
    assert infer("Div", [tt(B, dtype="int64"), tt(B, dtype="int64")])[0].dtype == "float"
    assert infer("Mul", [tt(B, dtype="float16"), tt(B, dtype="float32")])[0].dtype == "float32"
    assert infer("Sub", [tt(B, dtype="int32"), tt(B, dtype="int64")])[0].dtype == "int64"


# ---------------------------------------------------------------------- unary functions
UNARY = {"Neg": torch.neg, "Abs": torch.abs, "Sin": torch.sin, "Cos": torch.cos, "Exp": torch.exp,
         "Log": torch.log, "Sqrt": torch.sqrt, "Rsqrt": torch.rsqrt, "Reciprocal": torch.reciprocal,
         "Erf": torch.erf, "Softplus": F.softplus}


@pytest.mark.parametrize("name", list(UNARY))
def test_unary(name):
    x = torch.rand(2, 5) + 0.5
    assert infer(name, [tt(B, 5)])[0] == tt(B, 5)
    (y,) = run_lowered(name, {}, [x], [tt(2, 5)])
    assert torch.equal(y, UNARY[name](x))
    if name in ("Neg", "Abs"):
        assert infer(name, [tt(B, dtype="int64")])[0].dtype == "int64"
    else:
        assert shape_error(name, [tt(B, dtype="int64")]).code == "DLC008"


def test_softplus_attributes():
    x = torch.randn(4, 3) * 10
    (y,) = run_lowered("Softplus", {"beta": 2.0, "threshold": 5.0}, [x], [tt(4, 3)])
    assert torch.equal(y, F.softplus(x, beta=2.0, threshold=5.0))


def test_results_saved_for_backward_are_not_overwritable():
    assert not REGISTRY["Exp"].overwritable and not REGISTRY["Rsqrt"].overwritable
    assert REGISTRY["Sin"].overwritable


# ---------------------------------------------------------------------- reductions
@pytest.mark.parametrize("name, fn", [("Sum", torch.sum), ("Mean", torch.mean), ("Max", torch.amax)])
def test_reductions_over_several_dims(name, fn):
    x = torch.randn(2, 3, 4, 5)
    assert infer(name, [tt(B, 3, 4, 5)], dim=(1, -1))[0] == tt(B, 4)
    assert infer(name, [tt(B, 3, 4, 5)], dim=(2, 3), keepdim=True)[0] == tt(B, 3, 1, 1)
    assert infer(name, [tt(B, 3)], dim=-1)[0] == tt(B)
    (y,) = run_lowered(name, {"dim": (1, -1)}, [x], [tt(2, 3, 4, 5)])
    assert torch.equal(y, fn(x, dim=(1, -1)))
    assert "out of range" in shape_error(name, [tt(B, 3)], dim=(1, 2)).message
    assert "twice" in shape_error(name, [tt(B, 3)], dim=(1, -1)).message


def test_sum_counts_a_mask():
    assert infer("Sum", [tt(B, S, dtype="bool")], dim=1)[0] == tt(B, dtype="int64")


# ---------------------------------------------------------------------- in specs
def test_spec_arithmetic_compiles_and_runs(tmp_path):
    from tests.helpers import compile_to_module
    source = ("model M(d: int = 4) {\n  in x: [B, d]\n  in ids: [B] int64\n"
              "  hard_sigmoid = ReLU6()(x + 3) / 6\n  gate = 1 - Sigmoid()(x)\n"
              "  out y = x * hard_sigmoid + gate ** 2 + x // 2 + x % 3 - Exp()(-x)\n  out half = ids / 2\n}")
    module = compile_to_module(source, tmp_path)
    x, ids = torch.randn(3, 4), torch.tensor([1, 2, 3])
    y, half = module.M()(x, ids)
    gate = 1 - torch.sigmoid(x)
    torch.testing.assert_close(y, x * F.relu6(x + 3) / 6 + gate ** 2 + x // 2 + x % 3 - torch.exp(-x))
    assert torch.equal(half, ids / 2)


def test_spec_tensor_and_number_errors(tmp_path):
    path = tmp_path / "spec.dl"
    path.write_text("model M() {\n  in x: [B, 4]\n  out y = x @ 2\n}")
    (d,) = [d for d in check(path).diagnostics if d.is_error]
    assert d.code == "DLC011" and d.span.line == 3
    path.write_text("model M() {\n  in m: [B, 4] bool\n  out y = m + 1\n}")
    (d,) = [d for d in check(path).diagnostics if d.is_error]
    assert d.code == "DLC008" and "bool" in d.message
