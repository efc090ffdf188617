"""Cancel transposes that undo each other.

`x.transpose(1, 2).transpose(1, 2)` is `x`, and so is a permute followed by its
inverse (or a transpose and the permute that swaps the same two axes back).
The second op's consumers read `x` directly; the first disappears with it when
nothing else reads its result, and otherwise stays for those other readers.
"""
from __future__ import annotations

from compiler.ir import Graph, Node, Program
from compiler.passes.rewrite import bypass, describe, each_node, producer, reroute, uses

_REORDERS = ("Transpose", "Permute")


def _permutation(node: Node) -> tuple[int, ...] | None:
    """Output axis i reads input axis perm[i]."""
    if node.kind != "op" or node.op not in _REORDERS or not node.types:
        return None
    rank = node.types[0].rank
    if node.op == "Permute":
        return tuple(d % rank for d in node.attrs.dims)
    perm = list(range(rank))
    i, j = node.attrs.dim0 % rank, node.attrs.dim1 % rank
    perm[i], perm[j] = perm[j], perm[i]
    return tuple(perm)


def _undoes(first: Node, second: Node) -> bool:
    p, q = _permutation(first), _permutation(second)
    return p is not None and q is not None and len(p) == len(q) and all(p[q[j]] == j for j in range(len(q)))


def cancel_transpose_pairs(graph: Graph, program: Program) -> bool:
    changed = False
    for second in each_node(graph):
        first = producer(graph, second)
        if first is None or not _undoes(first, second):
            continue
        source = graph.operands(first.id)[0]
        if uses(graph, first.id) == 1:
            bypass(graph, second)
            bypass(graph, first)
            program.log.append(f"removed {describe(first)} and {describe(second)} in {graph.key}: they cancel")
        else:
            reroute(graph, second, [source])
            program.log.append(f"removed {describe(second)} in {graph.key}: it undoes {describe(first)}, "
                               f"which stays for its other uses")
        changed = True
    return changed
