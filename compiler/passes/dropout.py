"""Inference builds never train: drop every dropout (`dlc compile --inference`).

Dropout is the identity in eval mode, so removing it changes no eval output;
it only saves the module call and makes the graph read as what runs.  Attention
and recurrent layers keep their dropout as an attribute, which becomes 0.  A
model built this way trains without any dropout, hence the explicit flag.
"""
from __future__ import annotations

from dataclasses import replace

from compiler.ir import Graph, Node, Program
from compiler.ops import REGISTRY
from compiler.passes.rewrite import bypass, describe, each_node


def _active_training_attrs(node: Node) -> dict[str, float]:
    """The op's training-only attributes (`OpDef.training_only`) that are not 0 yet, set to 0."""
    return {name: 0.0 for name in REGISTRY[node.op].training_only if getattr(node.attrs, name) > 0}


def drop_dropout(graph: Graph, program: Program) -> bool:
    changed = False
    for node in each_node(graph):
        if node.kind != "op":
            continue
        if node.op == "Dropout":
            bypass(graph, node)
            program.log.append(f"removed {describe(node)} in {graph.key}: inference build")
        elif updates := _active_training_attrs(node):
            graph.replace_node(replace(node, attrs=node.attrs.model_copy(update=updates)))
            settings = ", ".join(f"{name}=0.0" for name in updates)
            program.log.append(f"set {settings} on {describe(node)} in {graph.key}: inference build")
        else:
            continue
        changed = True
    return changed
