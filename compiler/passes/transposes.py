"""Cancel transposes that undo each other.

`x.transpose(1, 2).transpose(1, 2)` is `x`, and so is a permute followed by its
inverse (or a transpose and the permute that swaps the same two axes back).
The second op's consumers read `x` directly; the first disappears with it when
nothing else reads its result, and otherwise stays for those other readers.
"""
from __future__ import annotations

from compiler.ir import Graph, Node, Program
from compiler.passes.rewrite import bypass, describe, reroute, uses
from compiler.passes.rules import Match, Op, Rule, apply_rules

_REORDERS = ("Transpose", "Permute")
_PAIR = Op(_REORDERS, "second", src=Op(_REORDERS, "first"))


def _permutation(node: Node) -> tuple[int, ...]:
    """Output axis i reads input axis perm[i]."""
    rank = node.types[0].rank
    if node.op == "Permute":
        return tuple(d % rank for d in node.attrs.dims)
    perm = list(range(rank))
    i, j = node.attrs.dim0 % rank, node.attrs.dim1 % rank
    perm[i], perm[j] = perm[j], perm[i]
    return tuple(perm)


def _undoes(m: Match) -> bool:
    p, q = _permutation(m.first), _permutation(m.second)
    return len(p) == len(q) and all(p[q[j]] == j for j in range(len(q)))


def _remove_both(m: Match) -> str:
    bypass(m.graph, m.second)
    bypass(m.graph, m.first)
    return f"removed {describe(m.first)} and {describe(m.second)} in {m.graph.key}: they cancel"


def _skip_inverse(m: Match) -> str:
    reroute(m.graph, m.second, [m.graph.operands(m.first.id)[0]])
    return (f"removed {describe(m.second)} in {m.graph.key}: it undoes {describe(m.first)}, "
            f"which stays for its other uses")


RULES = [
    Rule("cancel-reorder-pair", _PAIR, _remove_both, guard=lambda m: _undoes(m) and uses(m.graph, m.first.id) == 1,
         why="a permutation followed by its inverse is the identity"),
    # The first stays for its other readers; this one's readers read the original directly.
    Rule("skip-inverse-reorder", _PAIR, _skip_inverse, guard=_undoes,
         why="a permutation followed by its inverse is the identity, even when the first is read elsewhere"),
]


def cancel_transpose_pairs(graph: Graph, program: Program) -> bool:
    return apply_rules(RULES, graph, program)
