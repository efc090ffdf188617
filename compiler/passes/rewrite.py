"""Small graph-editing helpers shared by passes."""
from __future__ import annotations

from dataclasses import replace

from ..ir import Graph, Node


def bypass(graph: Graph, node: Node, slot: int = 0) -> None:
    """Remove a single-output node, sending its consumers to its `slot` operand."""
    src, index = graph.operands(node.id)[slot]
    for _, dst, key, data in list(graph.g.out_edges(node.id, keys=True, data=True)):
        graph.g.add_edge(src, dst, key=key, index=index)
    graph.outputs = [replace(o, node=src, index=index) if o.node == node.id else o for o in graph.outputs]
    source = graph.node(src)
    graph.replace_node(replace(source, derived_from=source.derived_from + (node.span,)))
    graph.g.remove_node(node.id)
