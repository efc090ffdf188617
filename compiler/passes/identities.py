"""Remove ops that compute nothing: dropout with p=0, reshapes to the same
shape, transposes of a dimension with itself -- whatever the op's registry
entry says computes nothing (`OpDef.identity`) for the attributes and types
it has here."""
from __future__ import annotations

from compiler.ir import Graph, Node, Program
from compiler.ir.values import set_by_parameters
from compiler.ops import REGISTRY
from compiler.passes.rewrite import bypass, describe


def _is_identity(graph: Graph, node: Node) -> bool:
    if node.kind != "op" or not node.types:
        return False
    # A rate, kind or factor computed from the block's parameters is an identity only for this
    # configuration: the generated class takes the parameter, so the op stays.
    if any(set_by_parameters(node.call, name) for name in REGISTRY[node.op].identity_attrs):
        return False
    operands = graph.operands(node.id)
    ins = [graph.output_type(*operands[s]) if s in operands else None for s in range(max(operands, default=-1) + 1)]
    return REGISTRY[node.op].computes_nothing(node.attrs, ins, list(node.types))


def remove_identity_ops(graph: Graph, program: Program) -> bool:
    changed = False
    for node in graph.ordered():
        if _is_identity(graph, node):
            bypass(graph, node)
            program.log.append(f"removed {describe(node)} in {graph.key}: it computes nothing")
            changed = True
    return changed
