"""Small graph-editing helpers shared by passes."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from compiler.ir import Graph, Node
from compiler.ir.values import show


def each_node(graph: Graph) -> Iterator[Node]:
    """Nodes in topological order for a pass that edits as it goes: each read afresh,
    those removed meanwhile skipped."""
    for node_id in [n.id for n in graph.ordered()]:
        if node_id in graph.g:
            yield graph.node(node_id)


def reroute(graph: Graph, node: Node, targets: list[tuple[str, int]]) -> None:
    """Remove `node`, sending the consumers of its output i to `targets[i]` (producer id,
    output index); the target producers keep `node`'s spans in their `derived_from`."""
    node = graph.node(node.id)
    for _, dst, key, data in list(graph.g.out_edges(node.id, keys=True, data=True)):
        src, index = targets[data["index"]]
        graph.g.add_edge(src, dst, key=key, index=index)
    graph.outputs = [replace(o, node=targets[o.index][0], index=targets[o.index][1]) if o.node == node.id else o
                     for o in graph.outputs]
    for producer in dict.fromkeys(src for src, _ in targets):
        source = graph.node(producer)
        graph.replace_node(replace(source, derived_from=source.derived_from + (node.span,) + node.derived_from))
    graph.g.remove_node(node.id)


def bypass(graph: Graph, node: Node, slot: int = 0) -> None:
    """Remove a single-output node, sending its consumers to its `slot` operand."""
    reroute(graph, node, [graph.operands(node.id)[slot]])


def uses(graph: Graph, node_id: str) -> int:
    """How many places read any result of the node: consumer slots plus block outputs."""
    return graph.g.out_degree(node_id) + sum(1 for o in graph.outputs if o.node == node_id)


def producer(graph: Graph, node: Node, slot: int = 0) -> Node | None:
    """The op that computes the node's `slot` operand, when it is a single-output op."""
    src, _ = graph.operands(node.id).get(slot, (None, 0))
    found = graph.node(src) if src is not None else None
    return found if found is not None and found.kind == "op" and len(found.outputs) == 1 else None


def describe(node: Node) -> str:
    """How the optimization log names a node: `Dropout(p=0.0) at stdlib/layers.dl:8:14`."""
    if node.kind != "op":
        return f"`{', '.join(node.outputs)}` ({node.op}) at {node.span}"
    fields = node.attrs.model_dump(exclude_unset=True) if node.attrs is not None else {}   # as the spec wrote them
    args = ", ".join(f"{k}={show(list(v) if isinstance(v, tuple) else v)}" for k, v in fields.items())
    return f"{node.op}({args}) at {node.span}"


def absorb(graph: Graph, first: Node, second: Node, op: str, attrs: Any) -> Node:
    """Make `second` one `op` with `attrs` that reads `first`'s operand; `first`, which only
    `second` reads, is removed and its spans travel on."""
    src, index = graph.operands(first.id)[0]
    merged = replace(graph.node(second.id), op=op, attrs=attrs)
    merged = replace(merged, derived_from=merged.derived_from + (first.span,) + graph.node(first.id).derived_from)
    graph.replace_node(merged)
    graph.g.remove_node(first.id)
    graph.connect(src, index, merged.id, 0)
    return merged
