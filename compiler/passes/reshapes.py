"""Collapse chains of reshapes into one.

Reshape and Flatten only regroup the dimensions of a tensor whose element order
they keep, so a chain of them is one reshape to the last shape; a chain that
ends in the shape it began with disappears.  Done when nothing else reads the
value in the middle of the chain: it is computed anyway otherwise, and nothing
would be saved.
"""
from __future__ import annotations

from compiler.ir import Graph, Node, Program
from compiler.ir.types import shapes_equal
from compiler.ops import REGISTRY
from compiler.passes.rewrite import absorb, bypass, describe
from compiler.passes.rules import Match, Op, Rule, apply_rules, only_reader

_RESHAPES = ("Reshape", "Flatten")
_CHAIN = Op(_RESHAPES, "second", src=Op(_RESHAPES, "first"))


def _target_shape(node: Node) -> tuple:
    """`node`'s result shape as Reshape dimensions: a Reshape's own; for a Flatten its inferred
    shape, where the first dimension that is an expression (not a number or a name) is -1."""
    if node.op == "Reshape":
        return node.attrs.shape
    dims: list = []
    for d in node.types[0].shape:
        if d.is_int:
            dims.append(int(d))
        else:
            dims.append(d if d.is_symbol or -1 in dims else -1)
    return tuple(dims)


def _chain(m: Match) -> str:
    return f"{describe(m.first)} then {describe(m.second)}"


def _ends_where_it_began(m: Match) -> bool:
    src, index = m.graph.operands(m.first.id)[0]
    before = m.graph.output_type(src, index)
    return before is not None and shapes_equal(before.shape, m.second.types[0].shape)


def _merge(m: Match) -> Node:
    attrs = REGISTRY["Reshape"].attrs(shape=_target_shape(m.second))
    return absorb(m.graph, m.first, m.second, "Reshape", attrs)


def _remove_chain(m: Match) -> str:
    chain = _chain(m)
    bypass(m.graph, _merge(m))
    return f"removed {chain} in {m.graph.key}: the chain ends in the shape it began with"


def _collapse_chain(m: Match) -> str:
    chain = _chain(m)
    return f"collapsed {chain} in {m.graph.key} into {describe(_merge(m))}"


RULES = [
    Rule("remove-reshape-round-trip", _CHAIN, _remove_chain, guard=_ends_where_it_began,
         condition=only_reader, describe=_chain,
         why="reshapes keep element order, so reshaping back to the starting shape is the identity"),
    Rule("collapse-reshape-chain", _CHAIN, _collapse_chain, condition=only_reader, describe=_chain,
         why="reshapes keep element order, so a chain of them is one reshape to the last shape"),
]


def collapse_reshape_chains(graph: Graph, program: Program) -> bool:
    return apply_rules(RULES, graph, program)
