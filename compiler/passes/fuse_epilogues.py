"""Epilogue fusion: find the chains a fused CPU kernel computes in one pass over memory --
convolution -> [folded batch norm] -> [residual sum] -> [activation], linear -> activation -- and
make their last op a layer that `optimize_for_inference()` can swap for that kernel.

oneDNN (behind torch's CPU convolutions and linear layers) applies an activation, and a sum with
another tensor, to a convolution's or GEMM's results while they are still in cache: the chain
costs one pass over the activations instead of three or four.  The weights are only known at run
time, so this pass decides *which* layers form a chain, and the generated model decides, by
measuring on its machine, whether the fused kernel is faster:

- the chain's last op becomes an `Epilogue` node, lowered as a submodule call
  (`relu1 = self.conv1_relu(bn1)`: an `nn.ReLU`, or `ResidualActivation` for a sum), and the class
  lists the chain in `EPILOGUES`; until swapped, the layer computes what the ops it replaced did;
- a block that is nothing but convolution -> [batch norm] -> [activation] (ConvBNAct) is not
  rewritten: its class says so in `CONV_EPILOGUE`, and the whole block is swapped.

A chain forms only where each value in it is read by the next op alone, is no block output, the
layers are applied once; a residual sum must not broadcast, and
only ReLU follows a fused sum (the one activation oneDNN applies after one).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import replace

from compiler.ir import Graph, Node, Program
from compiler.ops import REGISTRY
from compiler.ops import epilogue as epilogue_op
from compiler.ops.epilogue import LAYERS

# The activations oneDNN applies after a fused residual sum.
AFTER_SUM = ("relu",)
# Activations worth fusing into a GEMM: the transformers' FFN ones (ReLU and friends cost little there).
AFTER_LINEAR = ("gelu", "gelu_tanh")


def activation_kind(node: Node) -> str | None:
    """The activation a node applies, if it is one an Epilogue layer can be."""
    kind = epilogue_op.activation_kind(node.op, node.attrs) if node.kind == "op" else None
    return kind if kind in LAYERS else None


def _sole_reader(graph: Graph, node: Node) -> Node | None:
    """The one op reading `node`'s (single) result, when nothing else reads it and it is no output."""
    edges = list(graph.g.out_edges(node.id))
    if len(node.outputs) != 1 or len(edges) != 1 or any(o.node == node.id for o in graph.outputs):
        return None
    reader = graph.node(edges[0][1])
    return reader if reader.kind == "op" else None


def _folded_norm(graph: Graph, conv: Node) -> Node | None:
    reader = _sole_reader(graph, conv)
    if reader is not None and reader.op == "BatchNorm2d" and (conv.module, reader.module) in graph.conv_bn_folds:
        return reader
    return None


def whole_block_chain(graph: Graph) -> tuple | None:
    """(conv, norm or None, activation) when the block is input -> Conv2d -> [folded BN] -> [activation]."""
    nodes = [n for n in graph.ordered() if n.kind != "input"]
    if len(graph.inputs) != 1 or len(graph.outputs) != 1 or not nodes or nodes[0].kind != "op" \
            or nodes[0].op != "Conv2d":
        return None
    conv, rest = nodes[0], nodes[1:]
    norm = _folded_norm(graph, conv)
    if norm is not None:
        rest = rest[1:]
    last = norm or conv
    kind = None
    if len(rest) == 1 and _sole_reader(graph, last) is rest[0]:
        # Activation(kind) stays for a kind its parameter makes the identity: nothing to apply.
        identity = rest[0].kind == "op" and epilogue_op.activation_kind(rest[0].op, rest[0].attrs) == "identity"
        kind = "none" if identity else activation_kind(rest[0])
    if rest and kind is None:
        return None
    end = rest[0] if rest else last
    if graph.outputs[0].node != end.id or graph.operands(conv.id)[0][0] != graph.inputs[0]:
        return None
    return conv.module, norm.module if norm else None, kind or "none"


def _producer(graph: Graph, node: Node, program: Program, uses: Counter, tied: set) -> str | None:
    """"conv" or "linear" when `node` starts a chain: a layer applied once, untied."""
    if not node.module or uses[node.module] > 1 or node.module in tied:
        return None
    if node.kind == "op" and node.op in ("Conv2d", "Linear", "TransposedLinear"):   # (the last is an nn.Linear too)
        return "conv" if node.op == "Conv2d" else "linear"
    if node.kind == "block" and node.scan is None and node.op in program.graphs:   # a scan stacks its steps
        chain = whole_block_chain(program.graphs[node.op])
        return "conv" if chain is not None and chain[2] == "none" else None
    return None


def _chain(graph: Graph, start: Node, kind: str) -> tuple | None:
    """(norm or None, tail nodes, activation, conv operand or -1) of the chain after `start`."""
    norm = _folded_norm(graph, start) if start.kind == "op" and start.op == "Conv2d" else None
    value = norm or start
    reader = _sole_reader(graph, value)
    if reader is None:
        return None
    if kind == "linear":
        act = activation_kind(reader)
        return (None, [reader], act, -1) if act in AFTER_LINEAR else None
    if epilogue_op.is_residual_sum(reader.op):
        slots = {slot: src for slot, (src, _) in graph.operands(reader.id).items()}
        if list(slots.values()).count(value.id) != 1 or not _same_type(graph, value, reader):
            return None
        operand = next(slot for slot, src in slots.items() if src == value.id)
        after = _sole_reader(graph, reader)
        if after is not None and activation_kind(after) in AFTER_SUM:
            return norm, [reader, after], activation_kind(after), operand
        return norm, [reader], "none", operand
    act = activation_kind(reader)
    return (norm, [reader], act, -1) if act is not None else None


def _same_type(graph: Graph, value: Node, add: Node) -> bool:
    """Whether the sum has the chain value's shape and dtype (no broadcasting)."""
    before, after = value.types[0] if value.types else None, add.types[0] if add.types else None
    return before is not None and after is not None and str(before) == str(after)


def _module_name(graph: Graph, base: str) -> str:
    """A layer name for the Epilogue, free in this graph (the names of a definition's graphs agree)."""
    taken = {n.module for n in graph.ordered() if n.module}
    name, suffix = base, 2
    while name in taken:
        name, suffix = f"{base}{suffix}", suffix + 1
    return name


def _rewrite_tail(graph: Graph, producer: Node, tail: list[Node], activation: str, operand: int) -> Node:
    """Replace the chain's sum and/or activation by one Epilogue node reading the same operands."""
    first, last = tail[0], tail[-1]
    # In place as the replaced ops were: the sum into its first input, or the activation into its input.
    inplace = bool(getattr(first.attrs, "inplace", False))
    attrs = REGISTRY[epilogue_op.EPILOGUE].attrs(activation=activation, residual=operand >= 0, conv_operand=max(operand, 0),
                                       inplace=inplace)
    module = _module_name(graph, f"{producer.module}_{'residual' if operand >= 0 else activation}")
    node = graph.add(Node(f"{last.id}_epilogue", "op", epilogue_op.EPILOGUE, attrs, last.span, last.outputs, module, last.types,
                          derived_from=tuple(n.span for n in tail), guard=last.guard))
    graph.replace_node(replace(node, order=first.order))
    for slot, (src, index) in graph.operands(first.id).items():
        graph.connect(src, index, node.id, slot)
    for _, dst, slot, data in list(graph.g.out_edges(last.id, keys=True, data=True)):
        graph.g.add_edge(node.id, dst, key=slot, index=data["index"])
    graph.outputs = [replace(o, node=node.id) if o.node == last.id else o for o in graph.outputs]
    for old in tail:
        graph.g.remove_node(old.id)
    return node


def fuse_epilogues(graph: Graph, program: Program) -> bool:
    whole = whole_block_chain(graph)
    if whole is not None:
        graph.conv_epilogue = whole
        program.log.append(f"{graph.key} is one convolution chain ({' -> '.join(str(p) for p in whole)}): "
                           "optimize_for_inference() may swap it whole")
        return True
    uses = Counter(node.module for node in graph.ordered() if node.module)
    tied = {tie.target[0] for tie in graph.ties} | {tie.source[0] for tie in graph.ties}
    chains = []
    for start in graph.ordered():
        kind = _producer(graph, start, program, uses, tied) if start.id in graph.g else None
        found = _chain(graph, start, kind) if kind else None
        if found is None:
            continue
        norm, tail, activation, operand = found
        node = _rewrite_tail(graph, start, tail, activation, operand)
        chains.append((start.module, norm.module if norm else None, node.module, activation, operand))
        program.log.append(f"epilogue of {start.module} in {graph.key}: {' + '.join(n.op for n in tail)} "
                           f"as {node.module} ({node.span})")
    graph.epilogues = chains
    return bool(chains)
