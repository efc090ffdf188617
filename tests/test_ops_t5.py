"""The RelativePositionBias op (T5): shape rule, attribute checks, parameters,
constructor and lowering, and the emitted helper class run as torch code."""
from __future__ import annotations

import pytest
import torch

from compiler.ir.dims import dim
from compiler.ops import REGISTRY, LowerContext, ShapeError
from compiler.ir.types import TensorType, symbol
from tests.helpers import compile_to_module

B, Tq, Tk = (symbol(n) for n in ("B", "Tq", "Tk"))
OP = REGISTRY["RelativePositionBias"]


def infer(q_shape, k_shape, dtype: str = "float", **attrs):
    a = OP.attrs(**{"num_buckets": 32, "max_distance": 128, "heads": 8, **attrs})
    ins = [TensorType(tuple(dim(d) for d in s), dtype) for s in (q_shape, k_shape)]
    return a, OP.infer(a, ins)


BIASED = """
model Biased(d: int = 16, heads: int = 4) {
    in x: [B, S, d]
    bias = RelativePositionBias(32, 128, heads)(x, x)
    out y = Attention(heads, scale=1.0)(x, x, x, none, bias)
}
"""


@pytest.fixture(scope="module")
def biased(tmp_path_factory):
    """A generated module that uses the op, so it carries the emitted helper class."""
    return compile_to_module(BIASED, tmp_path_factory.mktemp("biased"), name="biased")


def test_shape_rule_is_one_by_heads_by_query_by_key_length():
    _, (out,) = infer((B, Tq, 512), (B, Tk, 512), heads=8)
    assert out.shape == (1, 8, Tq, Tk)
    _, (out,) = infer((2, 5, 16), (2, 7, 32), heads=3, bidirectional=False)   # features need not agree
    assert out.shape == (1, 3, 5, 7)


@pytest.mark.parametrize("q_shape, k_shape, slot", [((B, Tq), (B, Tk, 8), 0), ((B, Tq, 8), (Tk, 8), 1)])
def test_shape_rule_rejects_non_sequence_inputs(q_shape, k_shape, slot):
    with pytest.raises(ShapeError, match=r"must be \[B, T, features\]") as exc:
        infer(q_shape, k_shape)
    assert exc.value.slot == slot


@pytest.mark.parametrize("attrs, message", [
    ({"num_buckets": 3}, "at least 2 buckets per direction"),                     # 1 per direction
    ({"num_buckets": 1, "bidirectional": False}, "at least 2 buckets per direction"),
    ({"num_buckets": 32, "max_distance": 8}, "must exceed the 8 exact-offset buckets"),
    ({"num_buckets": 32, "max_distance": 16, "bidirectional": False}, "exceed the 16 exact-offset"),
])
def test_bucket_layout_must_leave_a_logarithmic_range(attrs, message):
    with pytest.raises(ShapeError, match=message):
        infer((B, Tq, 8), (B, Tk, 8), **attrs)


def test_params_constructor_and_lowering_agree_with_the_helper(biased):
    a = OP.attrs(num_buckets=32, max_distance=128, heads=8, bidirectional=False)
    module = eval(OP.init(a), {"RelativePositionBias": biased.RelativePositionBias})
    assert {k: tuple(v.shape) for k, v in module.state_dict().items()} == OP.params(a) == {"weight": (32, 8)}
    assert OP.helpers == ("RelativePositionBias",)
    ctx = LowerContext(["q", "k"], ["bias"], "self.position_bias", [], [], {}, lambda s: s)
    assert OP.lower(a, ctx) == ["bias = self.position_bias(q.shape[1], k.shape[1])"]
    bias = module(5, 7)
    assert bias.shape == (1, 8, 5, 7)


def test_helper_buckets_by_offset_and_direction(biased):
    module = biased.RelativePositionBias(32, 128, 4, bidirectional=True)
    offsets = torch.tensor([-1000, -128, -20, -8, -7, -1, 0, 1, 7, 8, 20, 128, 1000])
    buckets = module.bucket(offsets)
    # 16 buckets per direction: 8 exact offsets, then logarithmic up to 128, then the last bucket.
    assert buckets.tolist() == [15, 15, 10, 8, 7, 1, 0, 17, 23, 24, 26, 31, 31]
    causal = biased.RelativePositionBias(32, 128, 4, bidirectional=False)
    # A decoder's buckets ignore the future (every key after the query shares bucket 0).
    assert causal.bucket(offsets).tolist() == [31, 31, 17, 8, 7, 1, 0, 0, 0, 0, 0, 0, 0]


def test_bias_is_the_weight_row_of_each_offset_bucket(biased):
    module = biased.RelativePositionBias(8, 20, 2, bidirectional=True)
    bias = module(3, 4)                                        # [1, heads, Tq, Tk]
    offsets = torch.arange(4)[None, :] - torch.arange(3)[:, None]
    expected = module.weight[module.bucket(offsets)].permute(2, 0, 1)
    torch.testing.assert_close(bias[0], expected)


def test_spec_with_bias_feeds_attention(biased):
    model = biased.Biased()
    assert [k for k, _ in model.named_parameters()] == ["bias.weight"]
    assert model(torch.randn(2, 9, 16)).shape == (2, 9, 16)


def test_bad_bucket_layout_is_a_diagnostic_at_the_spec_line(tmp_path):
    from compiler.driver import check
    spec = tmp_path / "bad.dl"
    spec.write_text("model Bad() {\n    in x: [B, S, 8]\n"
                    "    out bias = RelativePositionBias(32, 4, 2)(x, x)\n}\n")
    result = check(spec)
    (diagnostic,) = [d for d in result.diagnostics if d.is_error]
    assert diagnostic.code == "DLC005" and diagnostic.span.line == 3
    assert "max_distance=4 must exceed the 8 exact-offset buckets" in diagnostic.message
