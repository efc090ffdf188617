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
from compiler.passes.rewrite import absorb, bypass, describe, each_node, producer, uses

_RESHAPES = ("Reshape", "Flatten")


def _is_reshape(node: Node | None) -> bool:
    return node is not None and node.kind == "op" and node.op in _RESHAPES and node.types is not None


def _target_shape(node: Node) -> tuple:
    """`node`'s result shape as Reshape dimensions: a Reshape's own; for a Flatten its inferred
    shape, where the first dimension that is an expression (not a number or a name) is -1."""
    if node.op == "Reshape":
        return node.attrs.shape
    dims: list = []
    for d in node.types[0].shape:
        if d.is_Integer:
            dims.append(int(d))
        else:
            dims.append(d if d.is_Symbol or -1 in dims else -1)
    return tuple(dims)


def collapse_reshape_chains(graph: Graph, program: Program) -> bool:
    changed = False
    for second in each_node(graph):
        first = producer(graph, second)
        if not (_is_reshape(second) and _is_reshape(first)):
            continue
        chain = f"{describe(first)} then {describe(second)}"
        if uses(graph, first.id) > 1:
            program.log.append(f"declined {chain} in {graph.key}: the value between them has other uses")
            continue
        src, index = graph.operands(first.id)[0]
        before = graph.output_type(src, index)
        merged = absorb(graph, first, second, "Reshape", REGISTRY["Reshape"].attrs(shape=_target_shape(second)))
        if before is not None and shapes_equal(before.shape, merged.types[0].shape):
            bypass(graph, merged)
            program.log.append(f"removed {chain} in {graph.key}: the chain ends in the shape it began with")
        else:
            program.log.append(f"collapsed {chain} in {graph.key} into {describe(merged)}")
        changed = True
    return changed
