"""`dlc graph`: the block hierarchy of an entry point as a Graphviz DOT graph.

Blocks are nested clusters down to `depth` levels; deeper blocks are single nodes.  A repeat
shows its first iteration opened and the others as one node (`unroll` opens them all).  Edges
carry the shape of the tensor they move, in the entry point's dimensions; every node and
cluster links to its spec line (the SVG `URL`, relative to where the picture is written).

The graph is built flat: each opened block contributes wire nodes for its inputs and outputs,
and the wires are contracted away at the end, so an edge from a layer in one block to a layer
in another is drawn directly.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import networkx as nx

from compiler.ir.dims import const
from compiler.diagnostics import Span
from compiler.ir import Graph, Node, Program
from compiler.ir.types import TensorType, symbol
from compiler.ops import REGISTRY
from compiler.tools.instances import bind

Ports = tuple[dict[int, str], dict[int, str]]     # input slot -> dot id, output index -> dot id


@dataclass
class _Cluster:
    label: str
    span: Span
    parent: str | None
    nodes: list[str] = field(default_factory=list)


class _Builder:
    def __init__(self, program: Program, depth: int, unroll: bool, link_base: str, dims: dict[str, int]):
        self.program, self.depth, self.unroll, self.link_base = program, depth, unroll, link_base
        self.sizes = {symbol(k): const(v) for k, v in dims.items()}
        self.g = nx.MultiDiGraph()
        self.clusters: dict[str, _Cluster] = {}
        self.wires: list[str] = []

    # ---------------------------------------------------------------- nodes, clusters, wires
    def node(self, dot_id: str, label: str, span: Span | None, cluster: str | None, kind: str) -> str:
        self.g.add_node(dot_id, label=label, span=span, kind=kind)
        if cluster is not None:
            self.clusters[cluster].nodes.append(dot_id)
        return dot_id

    def wire(self, dot_id: str) -> str:
        self.g.add_node(dot_id, kind="wire")
        self.wires.append(dot_id)
        return dot_id

    def edge(self, src: str, dst: str, t: TensorType | None) -> None:
        self.g.add_edge(src, dst, label=_shape_label(t.subs(self.sizes) if t is not None else None))

    def mark_ties(self, graph: Graph, layers: dict[str, str]) -> None:
        """Note on a tied layer's node whose parameter it shares (a line across the picture would
        cross everything)."""
        for tie in graph.ties:
            target = layers.get(tie.target[0])
            if target is not None and self.g.nodes[target].get("kind") != "wire":
                self.g.nodes[target]["label"] += f"\n{'.'.join(tie.target[1:])} tied to {'.'.join(tie.source)}"

    # ---------------------------------------------------------------- graphs
    def expand(self, graph: Graph, mapping: dict, prefix: str, level: int, cluster: str | None) -> Ports:
        """Emit the nodes of `graph` (inside `cluster`); its inputs and outputs become wires."""
        ends: dict[tuple[str, int], str] = {}
        layers: dict[str, str] = {}       # layer name -> its node, for ties
        ins = {slot: self.wire(f"{prefix}/in{slot}") for slot in range(len(graph.inputs))}
        for slot, input_id in enumerate(graph.inputs):
            ends[(input_id, 0)] = ins[slot]
        for node in graph.ordered():
            if node.kind not in ("op", "block", "repeat"):
                continue
            types = _input_types(graph, node, mapping)
            shared = node.module in layers
            in_ports, out_ports = self.emit(node, types, mapping, prefix, level, cluster, shared)
            if node.module and not shared and in_ports and len(set(in_ports.values())) == 1:
                layers[node.module] = next(iter(in_ports.values()))
            for slot, (src, index) in sorted(graph.operands(node.id).items()):
                self.edge(ends[(src, index)], in_ports[slot], types[slot])
            for index in range(len(node.outputs)):
                ends[(node.id, index)] = out_ports[index]
        outs = {}
        for k, out in enumerate(graph.outputs):
            outs[k] = self.wire(f"{prefix}/out{k}")
            t = graph.output_type(out.node, out.index)
            self.edge(ends[(out.node, out.index)], outs[k], t.subs(mapping) if t else None)
        self.mark_ties(graph, layers)
        return ins, outs

    def emit(self, node: Node, types: list, mapping: dict, prefix: str, level: int, cluster: str | None,
             shared: bool = False) -> Ports:
        dot_id = f"{prefix}/{node.id}"      # node ids, not layer names: a shared layer is applied twice
        name = node.module or (node.outputs[0] if node.outputs else node.id)
        name += " (shared)" if shared else ""
        if node.kind == "op":
            self.node(dot_id, f"{name}\n{node.op}" if name.lower() != node.op.lower() else node.op, node.span,
                      cluster, "op")
            return _all_ports(dot_id, types, node)
        if node.kind == "block":
            callee = self.program.graphs[node.op]
            if level >= self.depth:
                self.node(dot_id, f"{name}\n{callee.block}", node.span, cluster, "block")
                return _all_ports(dot_id, types, node)
            self.clusters[dot_id] = _Cluster(f"{name}: {callee.block}", node.span, cluster)
            return self.expand(callee, bind(callee, types), dot_id, level + 1, dot_id)
        return self.emit_repeat(node, types, dot_id, name, level, cluster)

    def emit_repeat(self, node: Node, types: list, dot_id: str, name: str, level: int, cluster: str | None) -> Ports:
        layers = node.attrs
        blocks = sorted({self._layer_name(layer) for layer in layers})
        title = f"{len(layers)} × {' | '.join(blocks)}"
        if level >= self.depth:
            self.node(dot_id, f"{name}\n{title}", node.span, cluster, "block")
            return _all_ports(dot_id, types, node)
        self.clusters[dot_id] = _Cluster(f"{name}: {title}", node.span, cluster)
        ins = {slot: self.wire(f"{dot_id}/in{slot}") for slot in range(len(types))}
        current, current_type = ins[0], types[0]
        shown = len(layers) if self.unroll else 1
        for i, layer in enumerate(layers[:shown]):
            step = [current_type, *types[1:]]
            if layer.kind == "block":
                callee = self.program.graphs[layer.target]
                sub = f"{dot_id}/{i}"
                self.clusters[sub] = _Cluster(f"{name}.{i}: {callee.block}", node.span, dot_id)
                mapping = bind(callee, step)
                in_ports, out_ports = self.expand(callee, mapping, sub, level + 1, sub)
                out = callee.outputs[0]
                current_type = callee.output_type(out.node, out.index).subs(mapping)
            else:
                op_id = self.node(f"{dot_id}/{i}", f"{name}.{i}\n{layer.target}", node.span, dot_id, "op")
                in_ports, out_ports = {s: op_id for s in range(len(types))}, {0: op_id}
                current_type = REGISTRY[layer.target].infer(layer.attrs, step)[0]
            self.edge(current, in_ports[0], step[0])
            for slot in range(1, len(types)):
                if slot in in_ports:
                    self.edge(ins[slot], in_ports[slot], None)
            current = out_ports[0]
        if shown < len(layers):
            others = {self._layer_name(layer) for layer in layers[shown:]}
            label = (f"{name}.{shown}\n{' | '.join(sorted(others))}" if shown == len(layers) - 1 else
                     f"{name}.{shown}–{len(layers) - 1}\n{len(layers) - shown} × {' | '.join(sorted(others))}")
            rest = self.node(f"{dot_id}/rest", label, node.span, dot_id, "block")
            self.edge(current, rest, current_type)
            for slot in range(1, len(types)):
                self.edge(ins[slot], rest, None)
            current = rest
        return ins, {i: current for i in range(len(node.outputs))}

    def _layer_name(self, layer) -> str:
        return self.program.graphs[layer.target].block if layer.kind == "block" else layer.target

    # ---------------------------------------------------------------- the model
    def model(self, public: str, key: str) -> None:
        graph = self.program.graphs[key]
        ins, outs = self.expand(graph, {}, "", 1, None)
        for slot, input_id in enumerate(graph.inputs):
            node = graph.node(input_id)
            src = self.node(f"input:{node.outputs[0]}", f"{node.outputs[0]}\n{node.attrs}", node.span, None, "input")
            self.edge(src, ins[slot], node.attrs)
        for k, out in enumerate(graph.outputs):
            dst = self.node(f"output:{out.name}", out.name, out.span, None, "output")
            self.edge(outs[k], dst, None)
        self.contract_wires()

    def contract_wires(self) -> None:
        """Replace each wire by edges from what feeds it to what it feeds (keeping the shape label)."""
        for w in self.wires:
            sources = list(self.g.in_edges(w, data="label"))
            targets = list(self.g.out_edges(w, data="label"))
            for src, _, label in sources:
                for _, dst, later in targets:
                    self.g.add_edge(src, dst, label=label or later)
            self.g.remove_node(w)


def _input_types(graph: Graph, node: Node, mapping: dict) -> list[TensorType | None]:
    operands = graph.operands(node.id)
    types: list[TensorType | None] = [None] * (max(operands, default=-1) + 1)
    for slot, (src, index) in operands.items():
        t = graph.output_type(src, index)
        types[slot] = t.subs(mapping) if t is not None else None
    return types


def _all_ports(dot_id: str, types: list, node: Node) -> Ports:
    return {s: dot_id for s in range(len(types))}, {i: dot_id for i in range(max(len(node.outputs), 1))}


def _shape_label(t: TensorType | None) -> str | None:
    if t is None:
        return None
    return t.shape_str() + ("" if t.dtype in ("float", "float32") else f" {t.dtype}")


# ---------------------------------------------------------------------- DOT text
_STYLES = {
    "op": 'shape=box, style="rounded,filled", fillcolor="#ffffff"',
    "block": 'shape=box, style="filled,bold", fillcolor="#dbe8f6"',
    "input": 'shape=ellipse, style=filled, fillcolor="#e6f4e1"',
    "output": 'shape=ellipse, style=filled, fillcolor="#fbe5d6"',
}


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _link(span: Span, base: str) -> str:
    path = os.path.relpath(os.path.abspath(span.file), os.path.abspath(base or "."))
    return f"URL={_quote(f'{path}#L{span.line}')}, tooltip={_quote(f'{span.file}:{span.line}:{span.col}')}"


def to_dot(program: Program, public: str, depth: int = 2, unroll: bool = False, link_base: str = "",
           dims: dict[str, int] | None = None) -> str:
    """The DOT text of entry point `public`: deterministic for a given spec and options.

    `link_base` is the folder the picture will live in; links to spec lines are relative to it.
    `dims` gives sizes to free dimensions, so the edges read [1, 64, 56, 56], not floor() terms.
    """
    key = dict(program.models)[public]
    builder = _Builder(program, depth, unroll, link_base, dims or {})
    builder.model(public, key)
    lines = [f"digraph {_quote(public)} {{", "  rankdir=TB;", '  node [fontname="Helvetica", fontsize=11];',
             '  edge [fontname="Helvetica", fontsize=9, color="#555555"];',
             '  graph [fontname="Helvetica", fontsize=12, style="rounded", color="#8899aa", labeljust=l];']
    children: dict[str | None, list[str]] = {}
    for cid, cluster in builder.clusters.items():
        children.setdefault(cluster.parent, []).append(cid)
    lines += _cluster_lines(builder, None, children, "  ")
    for src, dst, label in builder.g.edges(data="label"):
        attrs = f" [label={_quote(' ' + label)}]" if label else ""
        lines.append(f"  {_quote(src)} -> {_quote(dst)}{attrs};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _cluster_lines(builder: _Builder, cid: str | None, children: dict, indent: str) -> list[str]:
    lines = []
    nodes = builder.clusters[cid].nodes if cid is not None else [
        n for n, data in builder.g.nodes(data=True) if not any(n in c.nodes for c in builder.clusters.values())]
    for n in nodes:
        data = builder.g.nodes[n]
        link = f", {_link(data['span'], builder.link_base)}" if data.get("span") else ""
        lines.append(f"{indent}{_quote(n)} [label={_quote(data['label'])}, {_STYLES[data['kind']]}{link}];")
    for sub in children.get(cid, []):
        cluster = builder.clusters[sub]
        lines.append(f"{indent}subgraph {_quote('cluster_' + sub)} {{")
        link = _link(cluster.span, builder.link_base).replace(", tooltip=", "; tooltip=")
        lines.append(f"{indent}  label={_quote(cluster.label)}; {link};")
        lines += _cluster_lines(builder, sub, children, indent + "  ")
        lines.append(f"{indent}}}")
    return lines
