"""The graph IR: one `Graph` per block specialization.

Nodes are frozen `Node` records stored on a MultiDiGraph (compiler/ir/multigraph.py: networkx's
API and orders without importing networkx); edges are keyed by the consumer's input slot, so
`x + x` is two edges.  Rewrites build
new nodes with `dataclasses.replace` rather than editing them.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from operator import attrgetter
from typing import Any

from compiler.diagnostics import Span
from compiler.diagnostics.records import record
from compiler.ir.multigraph import MultiDiGraph, is_directed_acyclic_graph, lexicographical_topological_sort
from compiler.ir.types import TensorType
from compiler.ir.values import show


@record
class Node:
    """One op instance.

    kind: "input" | "op" | "block" | "repeat" | "output".
    op: primitive name for "op"; graph key (class name) for "block"; for
        "repeat" the graph keys of each iteration in `attrs`.
    module: attribute name of the submodule that holds its state, if any.
    """

    id: str
    kind: str
    op: str
    attrs: Any
    span: Span
    outputs: tuple[str, ...]
    module: str | None = None
    types: tuple[TensorType, ...] | None = None
    order: int = 0
    derived_from: tuple[Span, ...] = ()
    # The static `if` branches this node was built in: ((condition key, branch taken), ...), outermost first.
    guard: tuple[tuple[str, bool], ...] = ()
    call: Any = None              # values.CallExpr: the configuration in the spec's terms, for codegen
    # values.ScanSpec on a "block" node that a `scan` applies at each position of its first input
    scan: Any = None


def evolve(node: Node, **changes: Any) -> Node:
    """`dataclasses.replace(node, **changes)` without its per-field introspection: each stage
    makes a new node per node, so on a 20,000-node graph that introspection was a visible cost."""
    new = object.__new__(Node)
    new.__dict__.update(node.__dict__)
    new.__dict__.update(changes)
    return new


@dataclass(frozen=True)
class Tie:
    target: tuple[str, ...]
    source: tuple[str, ...]
    span: Span
    guard: tuple[tuple[str, bool], ...] = ()


@dataclass(frozen=True)
class DecodeDecl:
    """`decode logits from tokens`: the output and input of a model's decoding step."""

    logits: str
    tokens: str
    span: Span


@dataclass(frozen=True)
class Rename:
    """Reference checkpoint keys starting with `source` load into keys starting
    with `target`; `{name}` placeholders match one dotted component."""

    source: str
    target: str
    span: Span
    shape: tuple[int, ...] | None = None      # reshape the renamed tensors to this on load


@dataclass(frozen=True)
class InitRule:
    """`init Linear.weight = normal(std=0.02)`: the parameters `target` selects (an op kind and
    a parameter name, or a path to one layer's parameter) start from `scheme` with `args`
    ((name, value, the spec's expression or None), every argument of the scheme, in order)."""

    target: tuple[str, ...]
    scheme: str
    args: tuple[tuple[str, Any, Any], ...]
    span: Span
    by_op: bool                    # `Linear.weight` (every Linear), not a path to one layer


@record
class OutputDecl:
    name: str
    node: str
    index: int
    span: Span
    declared: TensorType | None = None
    guard: tuple[tuple[str, bool], ...] = ()


@dataclass
class Graph:
    """A specialized block: its nodes, declared inputs and outputs, ties."""

    key: str                      # generated class name
    block: str                    # block name in the spec
    params: dict[str, Any]
    span: Span
    g: MultiDiGraph = field(default_factory=MultiDiGraph)
    inputs: list[str] = field(default_factory=list)          # node ids, in order
    outputs: list[OutputDecl] = field(default_factory=list)
    ties: list[Tie] = field(default_factory=list)
    renames: list[Rename] = field(default_factory=list)
    aliases: list[tuple[str, str]] = field(default_factory=list)   # (input, earlier input given the same tensor)
    is_model: bool = False
    # (conv module, batch-norm module) pairs that optimize_for_inference() folds (fold-conv-bn)
    conv_bn_folds: list[tuple[str, str]] = field(default_factory=list)
    # (producer layer, folded norm or None, Epilogue layer, activation, conv operand or -1): chains
    # optimize_for_inference() may compute as one fused kernel (fuse-epilogues)
    epilogues: list[tuple] = field(default_factory=list)
    # (conv, norm or None, activation) when the whole block is one such chain (fuse-epilogues)
    conv_epilogue: tuple | None = None
    # (Epilogue layer, the inputs that must be donated to this block, or None): residual sums whose
    # fused kernel may write into the sum's other input, which dies there (donate-arguments)
    overwrites: list[tuple] = field(default_factory=list)
    # (called layer, its input's position, the inputs that must be donated, or None): calls handing
    # a layer an input that dies there, where the layer can use it (donate-arguments)
    donations: list[tuple] = field(default_factory=list)
    # where each named layer is bound (`training = Linear(d, d)`): a diagnostic about the name points there
    layer_spans: dict[str, Span] = field(default_factory=dict)
    # For emission per definition: the block's syntax, the static `if`s its body ran (key -> ast.If),
    # the branches this specialization took, and those of the `if`s that hold an `out`.
    definition: Any = None
    conditions: dict[str, Any] = field(default_factory=dict)
    decisions: list[tuple[str, bool]] = field(default_factory=list)
    output_guard: tuple[tuple[str, bool], ...] = ()
    lets: dict[str, Any] = field(default_factory=dict)      # top-level `let` values, for shape comments
    init_rules: list[InitRule] = field(default_factory=list)  # the block's `init` statements, in order
    decode: DecodeDecl | None = None                          # `decode logits from tokens`
    # (g, g.version, node ids in order) of the last ordered() (see there)
    _order: tuple[MultiDiGraph, int, list[str]] | None = field(default=None, init=False, repr=False, compare=False)

    def node(self, node_id: str) -> Node:
        return self.g.node_data[node_id]["node"]     # not g.nodes[...]: that builds a view per call

    def add(self, node: Node) -> Node:
        """Add `node` as the last in source order (its `order` becomes the node count)."""
        if node.order != self.g.number_of_nodes():
            node = evolve(node, order=self.g.number_of_nodes())
        self.g.add_node(node.id, node=node)
        return node

    def replace_node(self, node: Node) -> None:
        data = self.g.node_data[node.id]
        if data["node"].order != node.order:
            self.g.version += 1              # ordered() sorts by it
        data["node"] = node

    def connect(self, src: str, index: int, dst: str, slot: int) -> None:
        self.g.add_edge(src, dst, key=slot, index=index)

    def operands(self, node_id: str) -> dict[int, tuple[str, int]]:
        """slot -> (producer id, output index)."""
        # the predecessor map directly: what in_edges(keys=True, data=True) walks, in its order,
        # without building an edge view per node
        return {slot: (src, data["index"]) for src, edges in self.g.pred[node_id].items()
                for slot, data in edges.items()}

    def ordered(self) -> list[Node]:
        """Nodes in a deterministic topological order (source order breaks ties).  The order is
        kept until the graph's structure or a node's `order` changes: every stage walks each
        graph several times, mostly replacing nodes by typed or renamed ones in place."""
        data = self.g.node_data
        if self._order is not None and self._order[0] is self.g and self._order[1] == self.g.version:
            return [data[node_id]["node"] for node_id in self._order[2]]
        nodes = self._sorted()
        self._order = (self.g, self.g.version, [node.id for node in nodes])
        return nodes

    def _sorted(self) -> list[Node]:
        nodes = sorted([data["node"] for data in self.g.node_data.values()], key=_ORDER)
        # Fast path: graphs are built in source order, so sorting by it is usually already
        # topological -- and then it is exactly the lexicographical topological order, since the
        # smallest remaining node always has its producers placed.  A pass that appended a node
        # feeding earlier ones falls back to networkx's sort.
        rank = {node.id: i for i, node in enumerate(nodes)}
        if all(rank[src] < here for dst, here in rank.items() for src in self.g.pred[dst]):
            return nodes
        order = lexicographical_topological_sort(self.g, key=lambda n: self.node(n).order)
        return [self.node(n) for n in order]

    def copy(self) -> "Graph":
        return Graph(self.key, self.block, dict(self.params), self.span, self.g.copy(),
                     inputs=list(self.inputs), outputs=list(self.outputs), ties=list(self.ties),
                     renames=list(self.renames), aliases=list(self.aliases), is_model=self.is_model,
                     conv_bn_folds=list(self.conv_bn_folds), definition=self.definition,
                     epilogues=list(self.epilogues), conv_epilogue=self.conv_epilogue,
                     overwrites=list(self.overwrites), donations=list(self.donations),
                     conditions=dict(self.conditions), decisions=list(self.decisions),
                     output_guard=self.output_guard, lets=dict(self.lets),
                     init_rules=list(self.init_rules), decode=self.decode)

    def output_type(self, node_id: str, index: int) -> TensorType | None:
        types = self.node(node_id).types
        return types[index] if types else None


_ORDER = attrgetter("order")      # a node's place in source order: the sort key of ordered()


@dataclass
class Program:
    """Everything one spec compiles to."""

    source: str
    graphs: dict[str, Graph]              # in dependency order: callees first
    models: list[tuple[str, str]]         # (public class name, graph key)
    model_spans: dict[str, Span] = field(default_factory=dict)   # public name -> where it is declared
    log: list[str] = field(default_factory=list)                 # what passes did and declined (--explain)
    # Set by fold-conv-bn (-O2): every model class gets an optimize_for_inference() method.
    optimize_for_inference: bool = False
    # `model Name = Block(args)`: public name -> the arguments it fixes, as written (ast.Arg).
    alias_args: dict[str, tuple] = field(default_factory=dict)


def _callees(graph: Graph) -> list[str]:
    keys = []
    for node in graph.ordered():
        if node.kind == "block":
            keys.append(node.op)
        elif node.kind == "repeat":
            keys.extend(layer.target for layer in node.attrs if layer.kind == "block")
    return keys


def entry_program(program: Program) -> Program:
    """Only the graphs the entry points use, with final class names.

    Specializations that were superseded (re-specialized for aliased inputs) are
    dropped; entry points keep their names and other specializations of a block
    are numbered in order of first use (`Block`, `Block2`, ...).
    """
    seen: set[str] = set()
    stack = [key for _, key in program.models]
    while stack:
        key = stack.pop()
        if key not in seen:
            seen.add(key)
            stack.extend(_callees(program.graphs[key]))
    keys = [key for key in program.graphs if key in seen]
    names = _class_names(program, keys)
    graphs = {names[k]: _renamed(program.graphs[k], names) for k in keys}
    return replace(program, graphs=graphs, models=[(public, names[key]) for public, key in program.models])


def _class_names(program: Program, keys: list[str]) -> dict[str, str]:
    entries = {key for _, key in program.models}
    names = {key: key for key in keys if key in entries}
    taken = set(names.values()) | {program.graphs[k].block for k in entries}
    for key in keys:
        if key not in names:
            base, n = program.graphs[key].block, 1
            name = base
            while name in taken:
                n += 1
                name = f"{base}{n}"
            names[key] = name
            taken.add(name)
    return names


def renamed(graph: Graph, names: dict[str, str]) -> Graph:
    """A copy of `graph` keyed `names[graph.key]`, whose block nodes refer to the renamed graphs."""
    return _renamed(graph, names)


def _renamed(graph: Graph, names: dict[str, str]) -> Graph:
    new = graph.copy()
    new.key = names[graph.key]
    for node in graph.ordered():
        if node.kind == "block":
            new.replace_node(replace(node, op=names[node.op]))
        elif node.kind == "repeat":
            layers = tuple(replace(l, target=names[l.target]) if l.kind == "block" else l for l in node.attrs)
            new.replace_node(replace(node, op=layers[0].target, attrs=layers))
    return new


def verify(graph: Graph) -> None:
    """Structural invariants every stage must keep (used in tests and debug mode)."""
    assert is_directed_acyclic_graph(graph.g), f"{graph.key}: cycle"
    for node_id in graph.inputs:
        assert graph.node(node_id).kind == "input"
    for out in graph.outputs:
        assert out.node in graph.g, f"{graph.key}: output {out.name} refers to a removed node"
    for src, dst, slot, data in graph.g.edges(keys=True, data=True):
        assert data["index"] < len(graph.node(src).outputs), f"{graph.key}: bad edge {src}->{dst}"


def _attrs_text(node: Node) -> str:
    """An op's attributes that differ from their defaults, as a spec writes them: `[p=0.1]`."""
    if node.kind != "op" or not hasattr(node.attrs, "model_dump"):
        return ""
    fields = node.attrs.model_dump(exclude_defaults=True)
    text = ", ".join(f"{k}={show(list(v) if isinstance(v, tuple) else v)}" for k, v in fields.items())
    return f"[{text}]" if text else ""


def dump(program: Program, attrs: bool = False) -> str:
    """A deterministic text form of the IR, for `dlc dump --stage ir` and goldens; `attrs`
    adds each op's non-default attributes (per-pass goldens show what a pass rewrote)."""
    lines = []
    for graph in program.graphs.values():
        params = ", ".join(f"{k}={show(v)}" for k, v in graph.params.items())
        lines.append(f"graph {graph.key} = {graph.block}({params})")
        for node in graph.ordered():
            ops = graph.operands(node.id)
            args = ", ".join(f"{ops[s][0]}.{ops[s][1]}" if s in ops else "none" for s in range(max(ops, default=-1) + 1))
            typ = " :: " + ", ".join(map(str, node.types)) if node.types else ""
            mod = f" @{node.module}" if node.module else ""
            op = node.op + (_attrs_text(node) if attrs else "")
            kind = node.kind if node.scan is None else f"scan[axis={node.scan.axis}{', reverse' if node.scan.reverse else ''}]"
            lines.append(f"  {','.join(node.outputs) or '_'} = {kind}:{op}{mod}({args}){typ}  # {node.span.line}")
        for out in graph.outputs:
            lines.append(f"  out {out.name} = {out.node}.{out.index}")
        lines.extend(f"  fold {conv} <- {norm}" for conv, norm in graph.conv_bn_folds)
        lines.extend(f"  epilogue {' -> '.join(str(part) for part in chain)}" for chain in graph.epilogues)
        if graph.conv_epilogue:
            lines.append(f"  conv epilogue {' -> '.join(str(part) for part in graph.conv_epilogue)}")
        lines.extend(f"  overwrite {layer} " + ("never" if when is None else f"when {list(when)} donated")
                     for layer, when in graph.overwrites)
        lines.extend(f"  donate {layer}.{slot} " + ("never" if when is None else f"when {list(when)} donated")
                     for layer, slot, when in graph.donations)
        lines.append("")
    return "\n".join(lines)
