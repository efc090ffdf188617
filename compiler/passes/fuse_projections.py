"""Projection fusion: Linear layers that read the same tensor become one matmul.

Q/K/V projections of self-attention (K/V of cross-attention) read one input;
computing them as one [in, q+k+v] GEMM and splitting the result halves the
kernel launches and improves GEMM efficiency.  The fused layer records its
sources, and codegen emits a load hook that concatenates the separate
weights, so the unfused reference checkpoint still loads.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from compiler.ir import Graph, Node, Program
from compiler.ir.values import ArgExpr, CallExpr
from compiler.ops import REGISTRY
from compiler.syntax import ast


def _tied_modules(graph: Graph) -> set[str]:
    return {tie.target[0] for tie in graph.ties} | {tie.source[0] for tie in graph.ties}


def _candidates(graph: Graph, log: list[str]) -> list[list[Node]]:
    """Groups of >= 2 Linear nodes reading the same value with the same in_features and bias."""
    groups: dict[tuple, list[Node]] = defaultdict(list)
    tied = _tied_modules(graph)
    uses: dict[str, int] = defaultdict(int)
    for node in graph.ordered():
        if node.module:
            uses[node.module] += 1
    for node in graph.ordered():
        if node.kind != "op" or node.op != "Linear":
            continue
        if node.module in tied or uses[node.module] > 1:
            why = "its weight is tied" if node.module in tied else "the layer is applied more than once"
            log.append(f"declined {node.module} ({node.span}): {why}")
            continue
        src = graph.operands(node.id)[0]
        groups[(src, node.attrs.in_features, node.attrs.bias)].append(node)
    fusable = [g for g in groups.values() if len(g) > 1]
    _explain_lonely(graph, groups, log)
    return fusable


def _explain_lonely(graph: Graph, groups, log: list[str]) -> None:
    """Name projections of a block input that cannot join the projections of another input
    (cross-attention's query reads `q` while key and value read `kv`)."""
    of_inputs = {key: nodes for key, nodes in groups.items() if graph.node(key[0][0]).kind == "input"}
    for (src, in_features, bias), nodes in of_inputs.items():
        others = [n for (s, f, b), ns in of_inputs.items() if (f, b) == (in_features, bias) and s != src for n in ns]
        if len(nodes) == 1 and others:
            reads = graph.node(src[0]).outputs[0]
            other = graph.node(graph.operands(others[0].id)[0][0]).outputs[0]
            log.append(f"declined {nodes[0].module} ({nodes[0].span}): reads `{reads}` while "
                       f"{', '.join(n.module for n in others)} read `{other}`")


def _fused_call(nodes: list[Node], attrs) -> CallExpr:
    """The fused layer's sizes in the parameters' terms (`d_model` each), so the generated class
    builds it for every configuration."""
    written = [n.call.field_exprs() if n.call is not None else {} for n in nodes]
    fields = [(f, written[0][f]) for f in ("in_features", "bias") if f in written[0]]
    outs = [w.get("out_features") for w in written]
    if all(outs):
        items = tuple(a.expr for a in outs)
        fields.append(("out_sizes", ArgExpr("out_sizes", ast.ListLit(nodes[0].span, items), attrs.out_sizes)))
    return CallExpr(None, (), tuple(fields))


def _fuse(graph: Graph, nodes: list[Node]) -> Node:
    first = nodes[0]
    attrs = REGISTRY["FusedLinear"].attrs(
        in_features=first.attrs.in_features, out_sizes=tuple(n.attrs.out_features for n in nodes),
        bias=first.attrs.bias, sources=tuple(n.module for n in nodes))
    name = "_".join(n.module for n in nodes)
    outputs = tuple(n.outputs[0] for n in nodes)
    types = tuple(n.types[0] for n in nodes) if all(n.types for n in nodes) else None
    fused = graph.add(Node(f"{first.id}_fused", "op", "FusedLinear", attrs, first.span, outputs, name, types,
                           derived_from=tuple(n.span for n in nodes), guard=first.guard,
                           call=_fused_call(nodes, attrs)))
    fused = replace(fused, order=first.order)
    graph.replace_node(fused)
    src, index = graph.operands(first.id)[0]
    graph.connect(src, index, fused.id, 0)
    for i, node in enumerate(nodes):
        for _, dst, slot in list(graph.g.out_edges(node.id, keys=True)):
            graph.g.add_edge(fused.id, dst, key=slot, index=i)
        graph.outputs = [replace(o, node=fused.id, index=i) if o.node == node.id else o for o in graph.outputs]
        graph.g.remove_node(node.id)
    return fused


def fuse_projections(graph: Graph, program: Program) -> bool:
    log = program.log
    changed = False
    for nodes in _candidates(graph, log):
        fused = _fuse(graph, nodes)
        log.append(f"fused {', '.join(fused.attrs.sources)} into {fused.module} ({fused.span}) in {graph.key}")
        changed = True
    return changed
