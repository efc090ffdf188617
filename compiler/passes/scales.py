"""Fold consecutive multiplications by constants: x * a * b becomes x * (a * b).

One kernel instead of two; the product is computed once, at compile time, in
double precision.  A product of 1 removes both.  Done when nothing else reads
`x * a`, and declined when the product would overflow or underflow where the
two steps did not.
"""
from __future__ import annotations

import math
from dataclasses import replace

from compiler.ir import Graph, Node, Program
from compiler.ir.values import ArgExpr, CallExpr, set_by_parameters
from compiler.ops import REGISTRY
from compiler.passes.rewrite import absorb, bypass, describe
from compiler.passes.rules import Match, Op, Rule, apply_rules, only_reader
from compiler.syntax import ast

_CHAIN = Op(("Scale",), "second", src=Op(("Scale",), "first"))


def _factors(m: Match) -> tuple[float, float]:
    return m.first.attrs.factor, m.second.attrs.factor


def _chain(m: Match) -> str:
    return f"{describe(m.first)} then {describe(m.second)}"


def _representable(a: float, b: float) -> bool:
    product = a * b
    return math.isfinite(product) and (product != 0.0 or a == 0.0 or b == 0.0)


def _why_not(m: Match) -> str | None:
    a, b = _factors(m)
    return only_reader(m) or (None if _representable(a, b) else f"{a!r} * {b!r} is out of float range")


def _computed(m: Match) -> bool:
    """Whether a factor comes from the block's parameters (the class computes it, for any value)."""
    return set_by_parameters(m.first.call, "factor") or set_by_parameters(m.second.call, "factor")


def _factor_expr(node: Node) -> ast.Expr:
    arg = node.call.field_exprs().get("factor") if node.call is not None else None
    return arg.expr if arg is not None else ast.Float(node.span, node.attrs.factor)


def _merge(m: Match) -> Node:
    a, b = _factors(m)
    merged = absorb(m.graph, m.first, m.second, "Scale", REGISTRY["Scale"].attrs(factor=a * b))
    if _computed(m):        # the folded factor in the parameters' terms, so the generated class computes it
        expr: ast.Expr = ast.BinOp(m.second.span, "*", _factor_expr(m.first), _factor_expr(m.second))
    else:                   # the product itself: the second node's own expression would drop the first factor
        expr = ast.Float(m.second.span, a * b)
    merged = replace(merged, call=CallExpr(None, (), (("factor", ArgExpr("factor", expr, a * b)),)))
    m.graph.replace_node(merged)
    return merged


def _remove_both(m: Match) -> str:
    chain = _chain(m)
    bypass(m.graph, _merge(m))
    return f"removed {chain} in {m.graph.key}: the factors multiply to 1"


def _fold(m: Match) -> str:
    chain = _chain(m)
    return f"folded {chain} in {m.graph.key} into {describe(_merge(m))}"


RULES = [
    Rule("remove-unit-scale-pair", _CHAIN, _remove_both,
         guard=lambda m: _factors(m)[0] * _factors(m)[1] == 1.0 and not _computed(m),
         condition=_why_not, describe=_chain, why="x * a * b with a * b == 1 is x"),
    Rule("fold-scale-pair", _CHAIN, _fold, condition=_why_not, describe=_chain,
         why="x * a * b is x * (a * b): one kernel, the product taken once at compile time"),
]


def fold_scales(graph: Graph, program: Program) -> bool:
    return apply_rules(RULES, graph, program)
