"""The instance tree of an entry point: every layer the model object will hold, with the
types of its inputs and outputs written in the entry point's own dimensions.

Each block specialization is typed once in the symbols its inputs declare (`[B, Tq, d_model]`);
walking down from the model binds those symbols to the caller's dimensions at every call, as
shape inference does, so a layer deep inside a decoder reads `[B, T, 512]`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


from compiler.ir.dims import Dim
from compiler.diagnostics import Span
from compiler.ir import Graph, Node, Program
from compiler.ir.types import TensorType
from compiler.ops import REGISTRY

MAX_DEPTH = 64      # block nesting is bounded by the resolver; this only guards the walk


@dataclass
class Instance:
    """One layer of the model object: an op, a block, a repeat or one of its iterations.

    `path` is the state_dict prefix of its state (`encoder.0.attn.query`) for layers that hold a
    submodule, and the result name for functional ops.  `shared` marks a second application of
    a layer declared once (its parameters belong to the first).
    """

    path: str
    name: str
    kind: str                   # "model" | "op" | "block" | "repeat"
    type_name: str              # the op or block name, or "6 × EncoderLayer"
    span: Span
    inputs: list[TensorType | None] = field(default_factory=list)
    outputs: tuple[TensorType, ...] = ()
    op: str | None = None
    attrs: Any = None
    graph: Graph | None = None  # the block graph, for blocks and models
    stateful: bool = False      # holds a submodule (its parameters live at `path`)
    shared: bool = False
    children: list["Instance"] = field(default_factory=list)
    steps: Any = 1              # a scan's step block runs once per position: its sequence's length

    def walk(self):
        """This instance and every descendant, parents first."""
        yield self
        for child in self.children:
            yield from child.walk()


def model_instance(program: Program, public: str, key: str) -> Instance:
    graph = program.graphs[key]
    root = Instance("", public, "model", graph.block, program.model_spans.get(public, graph.span), graph=graph,
                    stateful=True)
    root.inputs = [graph.node(i).attrs for i in graph.inputs]
    root.outputs = tuple(t for t in (graph.output_type(o.node, o.index) for o in graph.outputs) if t is not None)
    root.children = _children(program, graph, {}, "", 0)
    return root


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _input_types(graph: Graph, node: Node, mapping: dict) -> list[TensorType | None]:
    operands = graph.operands(node.id)
    ins: list[TensorType | None] = [None] * (max(operands, default=-1) + 1)
    for slot, (src, index) in operands.items():
        t = graph.output_type(src, index)
        ins[slot] = t.subs(mapping) if t is not None else None
    return ins


def bind(callee: Graph, ins: list[TensorType | None]) -> dict[Dim, Dim]:
    """The callee's input symbols in terms of the caller's dimensions (as shape inference binds them)."""
    mapping: dict[Dim, Dim] = {}
    for slot, input_id in enumerate(callee.inputs):
        declared: TensorType = callee.node(input_id).attrs
        actual = ins[slot] if slot < len(ins) else None
        if actual is None or declared.rank != actual.rank:
            continue
        for d, a in zip(declared.shape, actual.shape):
            if d.is_symbol and d not in mapping:
                mapping[d] = a
    return mapping


def _children(program: Program, graph: Graph, mapping: dict, prefix: str, depth: int) -> list[Instance]:
    if depth > MAX_DEPTH:
        return []
    seen: set[str] = set()
    found = []
    for node in graph.ordered():
        if node.kind not in ("op", "block", "repeat"):
            continue
        name = node.module or (node.outputs[0] if node.outputs else node.id)
        inst = Instance(_join(prefix, name), name, node.kind, node.op, node.span,
                        inputs=_input_types(graph, node, mapping),
                        outputs=tuple(t.subs(mapping) for t in node.types or ()),
                        stateful=node.module is not None, shared=node.module in seen)
        if node.module:
            seen.add(node.module)
        if node.kind == "op":
            inst.op, inst.attrs = node.op, node.attrs
        elif node.kind == "block" and node.scan is not None:
            _fill_scan(program, inst, node, depth)
        elif node.kind == "block":
            _fill_block(program, inst, program.graphs[node.op], depth)
        else:
            _fill_repeat(program, inst, node, depth)
        found.append(inst)
    return found


def _fill_block(program: Program, inst: Instance, callee: Graph, depth: int) -> None:
    inst.type_name, inst.graph = callee.block, callee
    inst.children = _children(program, callee, bind(callee, inst.inputs), inst.path, depth + 1)
    if inst.shared:      # a shared block's parameters belong to its first application; its work does not
        for descendant in inst.walk():
            descendant.shared = True


def _fill_scan(program: Program, inst: Instance, node: Node, depth: int) -> None:
    """The step block, bound to one position of the sequence; its work counts once per position."""
    sequence, axis = inst.inputs[0], node.scan.axis
    whole = inst.inputs
    inst.inputs = [TensorType(sequence.shape[:axis] + sequence.shape[axis + 1:], sequence.dtype), *whole[1:]]
    _fill_block(program, inst, program.graphs[node.op], depth)
    inst.inputs, inst.steps = whole, sequence.shape[axis]
    inst.type_name = f"scan {inst.type_name}"


def _fill_repeat(program: Program, inst: Instance, node: Node, depth: int) -> None:
    """One child per iteration; each iteration's first output feeds the next one's first input."""
    ins = list(inst.inputs)
    names = set()
    for i, layer in enumerate(node.attrs):
        child = Instance(_join(inst.path, str(i)), str(i), layer.kind, layer.target, node.span, inputs=list(ins),
                         stateful=True)
        if layer.kind == "block":
            callee = program.graphs[layer.target]
            mapping = bind(callee, ins)
            _fill_block(program, child, callee, depth)
            child.outputs = tuple(callee.output_type(o.node, o.index).subs(mapping) for o in callee.outputs)
        else:
            child.op, child.attrs = layer.target, layer.attrs
            child.outputs = tuple(REGISTRY[layer.target].infer(layer.attrs, ins))
        names.add(child.type_name)
        inst.children.append(child)
        ins = [child.outputs[0], *ins[1:]] if child.outputs else ins
    kinds = " | ".join(sorted(names))
    inst.type_name = f"{len(node.attrs)} × {kinds}"
