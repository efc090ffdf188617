"""Argument donation: which residual sums may be written into their other input's memory, and
which calls hand a layer an input that dies there.

oneDNN's fused convolution can add its result into the residual input's own buffer (a sum
post-op on that memory, `torch.ops.mkldnn._convolution_pointwise_`) instead of reading it and
writing a new tensor; inductor does so for ResNet-50's 16 residual sums, and in dlc's `FusedConv`
it measured 4-6% of a ResNet-50 forward (Intel Xeon, family 6 model 167, session 13).  It
overwrites the input, which is correct only where nothing reads that memory afterwards.  Inside a
block that is a question about its graph; for the block's own inputs (Bottleneck's `x`, the
residual of most of its sums) it is its callers': `x` dies at the call when the caller's value
is read by nothing after it, and is memory the caller may give away -- a tensor it made, or an
input its own caller donated to it.  The model's own inputs are the user's and never donated.

- Each value's *origins*, the memory it may share: a new tensor made by a node of this graph
  (`OpDef.makes_new_tensor()`, a block or repeat whose outputs are), input i, or unknown
  (parameters, buffers, what an op may return unchanged).  Views (ops that allocate nothing) and
  in-place ops share their first input's, an elementwise op may return one of its inputs
  (Activation("identity"), a cast to the dtype it has); a batch norm folded into its convolution becomes the
  identity, so it shares its input's too; an Epilogue layer may return any of its inputs' memory
  (the in-place sum and the in-place activation do).
- A value dies at a node when every value made before that node and sharing its origins is read
  only by the node's ancestors (which run before it in any order the generated code takes) and by
  the node through that one input, and is no output of the block.
- `graph.overwrites`: (layer ending a residual chain, the inputs that must be donated to this
  block for it, or None where the other input of the sum does not die there) for each residual
  Epilogue; `graph.donations`: (called layer, its input position, the same) for each call whose
  callee, or a block inside it, can use that input's donation.

optimize_for_inference() follows DONATES from the model down its instances and lets a fused
residual kernel overwrite only where every condition on the way holds, and only inside the
model's own forward with no hooks on its layers (runtime/fusion.py, `plan_overwrites`).  A program
with a decoding model is left alone: its cache keeps some results from one call to the next.
"""
from __future__ import annotations

from compiler.diagnostics.records import record
from compiler.ir import Graph, Node, Program
from compiler.ir.multigraph import ancestors
from compiler.ops import REGISTRY
from compiler.ops.epilogue import EPILOGUE

UNKNOWN = ("unknown",)
NEW = ("new",)          # in a block's summary: memory the block made


@record
class Summary:
    """What callers need of a block: the origins of each output (NEW, ("input", i), UNKNOWN), and
    the inputs whose donation some overwrite inside it can use."""

    outputs: tuple[frozenset, ...]
    wants: frozenset[int]


class Analysis:
    """The donation facts of one graph: value origins, overwrites, donations (see the module doc)."""

    def __init__(self, graph: Graph, program: Program, memo: dict[str, Summary]):
        self.graph, self.program, self.memo = graph, program, memo
        self.nodes = graph.ordered()
        self.position = {node.id: i for i, node in enumerate(self.nodes)}
        self.names = [graph.node(i).outputs[0] for i in graph.inputs]
        self.origins: dict[tuple[str, int], frozenset] = {}
        for position, node_id in enumerate(graph.inputs):
            self.origins[(node_id, 0)] = frozenset({("input", position)})
        for node in self.nodes:
            if node.kind != "input":
                for index in range(len(node.outputs)):
                    self.origins[(node.id, index)] = self._node_origins(node, index)
        self.outputs = {(o.node, o.index) for o in graph.outputs}

    # ---- origins
    def _folded_norm(self, node: Node) -> bool:
        """Whether the node is a batch norm optimize_for_inference() folds into the convolution before it."""
        return node.kind == "op" and any(norm == node.module for _, norm in self.graph.conv_bn_folds)

    def _arguments(self, node: Node) -> dict[int, frozenset]:
        return {slot: self.origins.get(value, frozenset({UNKNOWN}))
                for slot, value in self.graph.operands(node.id).items()}

    def _node_origins(self, node: Node, index: int) -> frozenset:
        new = frozenset({("new", node.id)})
        args = self._arguments(node)
        unknown = frozenset({UNKNOWN})
        if node.kind == "op":
            op = REGISTRY[node.op]
            if node.op == EPILOGUE:
                return new | frozenset().union(*args.values())
            if getattr(node.attrs, "inplace", False):
                return args.get(0, unknown)
            if self._folded_norm(node):
                return new | args.get(0, unknown)     # the identity once folded
            if op.makes_new_tensor():
                return new
            if op.elementwise:     # a new tensor, or an input itself (Activation("identity"), a cast to its dtype)
                return new | frozenset().union(*args.values())
            if not op.allocates:
                return frozenset().union(*args.values()) or unknown     # a view, or its input unchanged
            return unknown
        if node.kind == "block" and node.scan is None and node.op in self.program.graphs:
            outputs = summary(self.program, node.op, self.memo).outputs
            return _mapped(outputs[index], args, new) if index < len(outputs) else unknown
        if node.kind == "repeat" and index == 0:
            carry = self._repeat_carry(node, args)
            return carry[-1] if carry else unknown
        return unknown

    def _repeat_carry(self, node: Node, args: dict[int, frozenset]) -> list[frozenset]:
        """The origins of what each layer of a repeat passes on (layer k's output), [] when a layer
        is not a block of this program."""
        new = frozenset({("new", node.id)})
        carry, found = args.get(0, frozenset({UNKNOWN})), []
        for layer in node.attrs:
            if layer.kind != "block" or layer.target not in self.program.graphs:
                return []
            carry = _mapped(summary(self.program, layer.target, self.memo).outputs[0], {**args, 0: carry}, new)
            found.append(carry)
        return found

    # ---- deaths
    def dies_at(self, node: Node, slot: int) -> tuple[str, ...] | None:
        """The inputs that must be donated to this block for the value in `slot` of `node` to die
        there, or None when it outlives the node (or its memory is unknown)."""
        src, index = self.graph.operands(node.id)[slot]
        roots = self.origins[(src, index)]
        return self._dies(roots, node, {(src, index, slot)})

    def _dies(self, roots: frozenset, node: Node, allowed: set) -> tuple[str, ...] | None:
        if UNKNOWN in roots:
            return None
        here = self.position[node.id]
        before = ancestors(self.graph.g, node.id)      # what runs before the node in any order codegen picks
        for value, origins in self.origins.items():
            if not origins & roots or self.position[value[0]] >= here:
                continue       # other memory, or made at or after the node: the contents it writes
            if value in self.outputs:
                return None
            for _, reader, slot, data in self.graph.g.out_edges(value[0], keys=True, data=True):
                if data["index"] != value[1]:
                    continue
                if reader == node.id and (*value, slot) not in allowed or reader != node.id and reader not in before:
                    return None
        return tuple(sorted(self.names[i] for kind, *rest in roots if kind == "input" for i in rest))

    # ---- what the pass records
    def overwrites(self, why: dict | None = None) -> list[tuple]:
        """(layer, condition or None) per residual Epilogue; `why` gets the reason of each None."""
        found = []
        for node in self.nodes:
            if node.kind == "op" and node.op == EPILOGUE and node.attrs.residual:
                other = 1 - node.attrs.conv_operand
                condition = self.dies_at(node, other)
                if condition is not None and not self._conv_input_apart(node, other):
                    condition = None
                    if why is not None:
                        why[node.module] = "the convolution reads the memory of the sum's other input"
                elif condition is None and why is not None:
                    why[node.module] = "the sum's other input outlives it (or its memory is not known)"
                found.append((node.module, condition))
        return found

    def _conv_input_apart(self, node: Node, other: int) -> bool:
        """Whether the convolution the fused kernel runs reads memory apart from the sum's other
        input (the kernel reads the one while it writes the other)."""
        producer = self.graph.node(self.graph.operands(node.id)[1 - other][0])
        if self._folded_norm(producer):
            producer = self.graph.node(self.graph.operands(producer.id)[0][0])     # back through the folded norm
        if not (producer.kind == "block" or producer.kind == "op" and producer.op == "Conv2d"):
            return False
        # a convolution, or a block that is one convolution chain: either reads its first input
        conv_input = self._arguments(producer).get(0, frozenset({UNKNOWN}))
        other_value = self.origins[self.graph.operands(node.id)[other]]
        return UNKNOWN not in conv_input and not conv_input & other_value

    def donations(self) -> list[tuple]:
        found = []
        for node in self.nodes:
            if not node.module:
                continue
            if node.kind == "block" and node.scan is None and node.op in self.program.graphs:
                wants = summary(self.program, node.op, self.memo).wants
                for slot in sorted(wants):
                    if slot in self.graph.operands(node.id):
                        found.append((node.module, slot, self.dies_at(node, slot)))
            elif node.kind == "repeat" and self._repeat_wants(node):
                found.append((node.module, 0, self._repeat_condition(node)))
        return found

    def _repeat_wants(self, node: Node) -> bool:
        return all(layer.kind == "block" and layer.target in self.program.graphs for layer in node.attrs) and any(
            0 in summary(self.program, layer.target, self.memo).wants for layer in node.attrs)

    def _repeat_condition(self, node: Node) -> tuple[str, ...] | None:
        """Donating a repeat's carried input donates it to every layer: the first gets the value the
        repeat is given, which must die there; each later one its predecessor's output, which must
        be memory the layers made or that first value, never an input passed to every layer."""
        condition = self.dies_at(node, 0)
        if condition is None:
            return None
        args = self._arguments(node)
        allowed = args[0] | {("new", node.id)}
        if any(not carry <= allowed for carry in self._repeat_carry(node, args)[:-1]):
            return None
        return condition


def _mapped(outputs: frozenset, args: dict[int, frozenset], new: frozenset) -> frozenset:
    """A callee's output origins in the caller's terms."""
    found: frozenset = frozenset()
    for token in outputs:
        if token == NEW:
            found |= new
        elif token[0] == "input":
            found |= args.get(token[1], frozenset({UNKNOWN}))
        else:
            found |= {UNKNOWN}
    return found


def summary(program: Program, key: str, memo: dict[str, Summary]) -> Summary:
    """A block's Summary, computed once per `memo`: each graph's analysis starts one, so a block
    called from several graphs is summarized again for each (the pass has no state across graphs;
    the -O2 compile of every spec took 2.0 s with it, 2.3 s without)."""
    if key in memo:
        return memo[key]
    graph = program.graphs[key]
    memo[key] = Summary((frozenset({UNKNOWN}),) * len(graph.outputs), frozenset())    # a cycle: assume the worst
    analysis = Analysis(graph, program, memo)
    outputs = []
    for out in graph.outputs:
        origins = analysis.origins.get((out.node, out.index), frozenset({UNKNOWN}))
        outputs.append(frozenset(NEW if token[0] == "new" else token for token in origins))
    position = {name: i for i, name in enumerate(analysis.names)}
    entries = [condition for _, condition in analysis.overwrites()] + [c for *_, c in analysis.donations()]
    wants = frozenset(position[name] for condition in entries if condition is not None for name in condition)
    memo[key] = Summary(tuple(outputs), wants)
    return memo[key]


def _when(condition: tuple[str, ...]) -> str:
    return f" when {', '.join(condition)} {'is' if len(condition) == 1 else 'are'} donated" if condition else ""


def donate_arguments(graph: Graph, program: Program) -> bool:
    if any(g.decode is not None for g in program.graphs.values()):
        return False
    analysis, why = Analysis(graph, program, {}), {}
    graph.overwrites, graph.donations = analysis.overwrites(why), analysis.donations()
    for layer, condition in graph.overwrites:
        program.log.append(f"{layer} in {graph.key}: " + (
            f"{why[layer]}; its fused kernel writes a new tensor" if condition is None
            else f"its fused kernel may add into the residual input's memory{_when(condition)}"))
    for layer, slot, condition in graph.donations:
        if condition is not None:
            program.log.append(f"{graph.key} donates input {slot} of {layer}{_when(condition)}")
    return any(c is not None for _, c in graph.overwrites) or any(c is not None for *_, c in graph.donations)
