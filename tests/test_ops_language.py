"""ZerosIfMissing: its shape rule, its lowering, and the generated code with the
optional input given and left out."""
from __future__ import annotations

import pytest
import torch

from compiler.ops import REGISTRY, LowerContext, ShapeError
from compiler.ir.types import TensorType, symbol
from tests.helpers import compile_to_module

B, S = symbol("B"), symbol("S")
OP = REGISTRY["ZerosIfMissing"]
IDS = TensorType((B, S), "int64")


def infer(*ins):
    return OP.infer(OP.attrs(), list(ins))


def test_the_result_has_the_shape_and_dtype_of_like_and_is_never_none():
    optional = TensorType((B, S), "int64", optional=True)
    assert infer(optional, IDS) == [TensorType((B, S), "int64")]
    assert infer(None, IDS) == [TensorType((B, S), "int64")]


def test_a_given_input_must_match_like():
    with pytest.raises(ShapeError, match="differ in shape") as shape:
        infer(TensorType((B, S, 2), "int64"), IDS)
    with pytest.raises(ShapeError, match="int32 but `like` is int64") as dtype:
        infer(TensorType((B, S), "int32"), IDS)
    assert shape.value.slot == dtype.value.slot == 0
    assert dtype.value.code == "DLC008"


def test_like_is_required():
    with pytest.raises(ShapeError, match="`like` input") as missing:
        infer(TensorType((B, S), "int64"))
    assert missing.value.slot == 1


def _lower(x: str | None, x_type: TensorType | None) -> list[str]:
    ctx = LowerContext([x, "ids"], ["types"], None, [x_type, IDS], [IDS], {}, lambda s: s)
    return OP.lower(OP.attrs(), ctx)


def test_lowering_tests_for_none_only_when_the_input_may_be_none():
    assert _lower("t", TensorType((B, S), "int64", optional=True)) == [
        "types = t if t is not None else torch.zeros_like(ids)"]
    assert _lower("t", IDS) == ["types = t"]
    assert _lower(None, None) == ["types = torch.zeros_like(ids)"]


def test_generated_code_defaults_the_optional_input(tmp_path):
    module = compile_to_module("""
        model Segments(types: int = 3) {
            in ids: [B, S] int64
            in segments: [B, S] int64 optional
            out embedded = Embedding(types, 4)(ZerosIfMissing()(segments, ids))
        }""", tmp_path, name="segments")
    model = module.Segments()
    ids = torch.tensor([[5, 6, 7]])
    segments = torch.tensor([[0, 1, 2]])
    assert torch.equal(model(ids, segments), model.embedded.weight[segments])
    assert torch.equal(model(ids), model.embedded.weight[torch.zeros_like(ids)])
