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
from compiler.syntax import ast
from compiler.ops import REGISTRY
from compiler.passes.rewrite import absorb, bypass, describe, each_node, producer, uses


def _is_scale(node: Node | None) -> bool:
    return node is not None and node.kind == "op" and node.op == "Scale"


def _representable(a: float, b: float) -> bool:
    product = a * b
    return math.isfinite(product) and (product != 0.0 or a == 0.0 or b == 0.0)


def _factor_expr(node: Node) -> ast.Expr:
    arg = node.call.field_exprs().get("factor") if node.call is not None else None
    return arg.expr if arg is not None else ast.Float(node.span, node.attrs.factor)


def _product_call(first: Node, second: Node) -> CallExpr:
    """The folded factor in the parameters' terms, so the generated class computes it."""
    expr = ast.BinOp(second.span, "*", _factor_expr(first), _factor_expr(second))
    return CallExpr(None, (), (("factor", ArgExpr("factor", expr, first.attrs.factor * second.attrs.factor)),))


def fold_scales(graph: Graph, program: Program) -> bool:
    changed = False
    for second in each_node(graph):
        first = producer(graph, second)
        if not (_is_scale(second) and _is_scale(first)):
            continue
        a, b = first.attrs.factor, second.attrs.factor
        chain = f"{describe(first)} then {describe(second)}"
        if uses(graph, first.id) > 1 or not _representable(a, b):
            why = "the value between them has other uses" if uses(graph, first.id) > 1 else f"{a!r} * {b!r} is out of float range"
            program.log.append(f"declined {chain} in {graph.key}: {why}")
            continue
        merged = absorb(graph, first, second, "Scale", REGISTRY["Scale"].attrs(factor=a * b))
        computed = set_by_parameters(first.call, "factor") or set_by_parameters(second.call, "factor")
        if computed:
            merged = replace(merged, call=_product_call(first, second))
            graph.replace_node(merged)
        if merged.attrs.factor == 1.0 and not computed:
            bypass(graph, merged)
            program.log.append(f"removed {chain} in {graph.key}: the factors multiply to 1")
        else:
            program.log.append(f"folded {chain} in {graph.key} into {describe(merged)}")
        changed = True
    return changed
