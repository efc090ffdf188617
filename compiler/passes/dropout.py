"""Inference builds never train: drop every dropout (`dlc compile --inference`).

Dropout is the identity in eval mode, so removing it changes no eval output;
it only saves the module call and makes the graph read as what runs.  Attention
and recurrent layers keep their dropout as an attribute, which becomes 0.  A
model built this way trains without any dropout, hence the explicit flag.
"""
from __future__ import annotations

from dataclasses import replace

from compiler.ir import Graph, Program
from compiler.passes.rewrite import bypass, describe, each_node

_DROPOUT_ATTRS = ("Attention", "LSTM", "GRU")     # ops whose `dropout` attribute acts only in training


def drop_dropout(graph: Graph, program: Program) -> bool:
    changed = False
    for node in each_node(graph):
        if node.kind != "op":
            continue
        if node.op == "Dropout":
            bypass(graph, node)
            program.log.append(f"removed {describe(node)} in {graph.key}: inference build")
        elif node.op in _DROPOUT_ATTRS and node.attrs.dropout > 0:
            graph.replace_node(replace(node, attrs=node.attrs.model_copy(update={"dropout": 0.0})))
            program.log.append(f"set dropout=0.0 on {describe(node)} in {graph.key}: inference build")
        else:
            continue
        changed = True
    return changed
