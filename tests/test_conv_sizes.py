"""Convolution and pooling output sizes: a fixed input size takes an integer path of its own
(compiler/ops/conv.py), which must give what the symbolic formula gives at that size."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.ir.dims import const
from compiler.ir.types import symbol
from compiler.ops.conv import out_size
from tests.fast_lane import examples

H = symbol("H")


@settings(max_examples=examples(300), deadline=None)
@given(size=st.integers(1, 300), k=st.integers(1, 11), s=st.integers(1, 5), p=st.integers(0, 6),
       d=st.integers(1, 3), ceil_mode=st.booleans())
def test_a_fixed_size_gives_the_symbolic_formula_at_that_size(size, k, s, p, d, ceil_mode):
    fixed = out_size(const(size), k, s, p, d, ceil_mode)
    assert fixed.is_int
    assert fixed == out_size(H, k, s, p, d, ceil_mode).subs({H: size})
    assert fixed == out_size(size, k, s, p, d, ceil_mode)          # a Python int too
