"""Remove ops that compute nothing: dropout with p=0, reshapes to the same
shape, and transposes of a dimension with itself."""
from __future__ import annotations

from compiler.ir import Graph, Node, Program
from compiler.ir.types import shapes_equal
from compiler.ir.values import set_by_parameters
from compiler.passes.rewrite import bypass, describe


def _is_identity(graph: Graph, node: Node) -> bool:
    if node.kind != "op" or not node.types:
        return False
    # A rate, kind or factor computed from the block's parameters is one only for this configuration:
    # the generated class takes the parameter, so the op stays.
    if node.op == "Dropout":
        return node.attrs.p == 0.0 and not set_by_parameters(node.call, "p")
    if node.op == "Activation":
        return node.attrs.kind == "identity" and not set_by_parameters(node.call, "kind")
    if node.op == "Scale":
        return node.attrs.factor == 1.0 and not set_by_parameters(node.call, "factor")
    if node.op == "Transpose":
        rank = node.types[0].rank
        return node.attrs.dim0 % rank == node.attrs.dim1 % rank
    if node.op in ("Reshape", "Flatten", "Permute"):
        src, index = graph.operands(node.id)[0]
        before = graph.output_type(src, index)
        same = before is not None and shapes_equal(before.shape, node.types[0].shape)
        return same and (node.op != "Permute" or list(node.attrs.dims) == sorted(node.attrs.dims))
    return False


def remove_identity_ops(graph: Graph, program: Program) -> bool:
    changed = False
    for node in graph.ordered():
        if _is_identity(graph, node):
            bypass(graph, node)
            program.log.append(f"removed {describe(node)} in {graph.key}: it computes nothing")
            changed = True
    return changed
