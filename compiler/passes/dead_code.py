"""Dead-code elimination: drop every node whose results reach no output.

Untaken static `if` branches never reach the IR (resolution skips them); this
pass removes the rest: unused results, heads an entry point does not return,
and the chains that only fed them.  Inputs stay, since they are the signature.
"""
from __future__ import annotations

from compiler.ir import Graph, Program
from compiler.ir.multigraph import ancestors
from compiler.passes.rewrite import describe


def eliminate_dead_code(graph: Graph, program: Program) -> bool:
    live: set[str] = set(graph.inputs)
    for out in graph.outputs:
        live.add(out.node)
        live |= ancestors(graph.g, out.node)
    dead = [n.id for n in graph.ordered() if n.id not in live]
    for node_id in dead:
        program.log.append(f"removed {describe(graph.node(node_id))} in {graph.key}: its result reaches no output")
    graph.g.remove_nodes_from(dead)
    return bool(dead)
