"""Building blocks for the cost formulas of op entries (`macs`, `flops` on `OpDef`).

Conventions, the same as fvcore's and torch.utils.flop_counter's where they overlap:
a matrix product [M, K] @ [K, N] is M*N*K multiply-accumulates (MACs) and 2*M*N*K
FLOPs; a bias add is not counted in the MACs (flop_counter ignores it too) but is
one FLOP per output element; element-wise ops cost one FLOP per output element and
step (a LayerNorm is about five steps); views, lookups and copies cost nothing.
Counts are for one forward call in eval mode (dropout is the identity).
"""
from __future__ import annotations

from functools import reduce
from operator import mul
from typing import Any

import sympy

from compiler.ir.types import TensorType


def numel(t: TensorType | None) -> sympy.Expr:
    """Number of elements of a tensor type (0 for an absent optional input)."""
    if t is None:
        return sympy.Integer(0)
    return reduce(mul, t.shape, sympy.Integer(1))


def per_output_element(steps: int = 1):
    """A `flops` rule: `steps` FLOPs for each element of every output."""
    def flops(attrs: Any, ins: list[TensorType | None], outs: list[TensorType]) -> sympy.Expr:
        return steps * sum((numel(t) for t in outs), sympy.Integer(0))
    return flops


def per_input_element(steps: int = 1):
    """A `flops` rule for reductions: `steps` FLOPs for each element of the first input."""
    def flops(attrs: Any, ins: list[TensorType | None], outs: list[TensorType]) -> sympy.Expr:
        return steps * numel(ins[0])
    return flops


def linear_macs(in_features: int, out_features: int, x: TensorType | None) -> sympy.Expr:
    """x [..., in_features] times a [in_features, out_features] matrix."""
    return numel(x) * out_features


def plus_bias(macs: sympy.Expr, bias: bool, out: TensorType) -> sympy.Expr:
    """2 FLOPs per MAC, plus one per output element for a bias."""
    return 2 * macs + (numel(out) if bias else 0)
