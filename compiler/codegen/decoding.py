"""Which blocks take part in incremental decoding, and how.

A block with a causal attention anywhere inside it has a decoder step: its class's
forward takes `past_key_values` (a KVCache, dlc/runtime/decoding.py), its causal
attention layers append their keys and values there, and the calls that lead to one
pass the cache on.  Positions restart nowhere: a position op (learned, sinusoidal,
rotary, T5's relative bias) whose input runs along the decoded time axis continues from
the cached length.  The decoded axis of a graph is the time axis (dimension 1) of what
its cached consumers take first, so the encoder side of an encoder-decoder, on another
axis, keeps its positions.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from compiler.check.decoding import callee_keys, causal_attention, decoder_graphs, stepped_scans
from compiler.codegen.source_side import computed_once, fixed_values
from compiler.ir import Graph, Node, Program

CACHE = "past_key_values"        # HF's name for the cache argument
KEEP = "logits_to_keep"          # HF's: score only the last N positions (0: all); generate() asks for 1
# The output layers whose input keep_logits slices: position-wise projections to the vocabulary.
HEAD_OPS = frozenset({"Linear", "TransposedLinear"})
# Ops whose result depends on the positions of their input's time axis.
POSITION_OPS = frozenset({"PositionEmbedding", "SinusoidalPositions", "RelativePositionBias", "Rotary"})


@dataclass
class DecodingPlan:
    """Per graph key: whether its class takes the cache, and whether this instance uses it."""

    takes_cache: set[str] = field(default_factory=set)    # graphs whose definition has a decoder step
    uses_cache: set[str] = field(default_factory=set)     # graphs with a causal attention in this instance
    # (graph key, node id) of the scans whose carried state the cache keeps (a recurrent decoder)
    stepped_scans: set[tuple[str, str]] = field(default_factory=set)
    # per graph key: the nodes whose values are the same at every step (an encoder-decoder's source side)
    fixed: dict[str, frozenset[str]] = field(default_factory=dict)
    # per decoding model graph key: the head layer whose input `logits_to_keep` slices
    heads: dict[str, str] = field(default_factory=dict)
    keeps_logits: set[str] = field(default_factory=set)   # graphs whose class takes logits_to_keep

    def kept_logits(self, graph: Graph, node: Node, args: list) -> list:
        """The head's arguments, its input cut to the last `logits_to_keep` positions: a prompt's
        first step scores one position, not all of them (HF's generate does so too)."""
        if self.heads.get(graph.key) != node.id:
            return args
        return [f"{args[0]}[:, -{KEEP}:]", *args[1:]]

    def computed_once(self, graph: Graph, node: Node) -> bool:
        """Whether this call's value is computed at the first decoding step only (source_side.py)."""
        return graph.key in self.uses_cache and computed_once(graph, node, self.fixed.get(graph.key, frozenset()))

    def passes_cache(self, graph: Graph, callee_key: str) -> bool:
        return graph.key in self.uses_cache and callee_key in self.uses_cache

    def past_positions(self, graph: Graph, node: Node) -> str | None:
        """For a position op whose positions continue after the cached ones, the expression of
        their number; None for one whose positions start at 0."""
        if graph.key not in self.uses_cache or node.kind != "op" or node.op not in POSITION_OPS:
            return None
        axis = _time_axis(graph, node)
        if axis is None or axis not in decoded_axes(graph, self.uses_cache):
            return None
        return f"past_length({CACHE}, {self._owner(graph)})"

    def decoded_positions(self, graph: Graph, node: Node):
        """For a position op that continues after the cached positions, `x -> the expression of
        the positions of x's time axis` (each row's own where generate() got an attention_mask)."""
        if self.past_positions(graph, node) is None:
            return None
        owner = self._owner(graph)
        return lambda x: f"decoded_positions({CACHE}, {owner}, {x})"

    @staticmethod
    def _owner(graph: Graph) -> str:
        # Inside a block with its own causal attention (rotary), that attention's cached length: the
        # layers below it have appended this step's keys already.  Elsewhere (the bottom of a stack,
        # before any layer appends), the first layer's.
        return "self" if any(causal_attention(n) for n in graph.ordered()) else "None"


def plan_decoding(program: Program, definition_of) -> DecodingPlan:
    """The decoding plan of a program; `definition_of(graph)` names a graph's block definition."""
    decoders = decoder_graphs(program)
    fixed = fixed_values(program, decoders, lambda graph: decoded_axes(graph, decoders))
    uses = decoders | set(fixed)         # the blocks with fixed inputs keep their fixed values in the cache
    definitions = {definition_of(program.graphs[key]) for key in uses}
    takes = {key for key, g in program.graphs.items() if definition_of(g) in definitions}
    scans = {(key, node.id) for key, g in program.graphs.items() for node in stepped_scans(g)}
    heads = {key: head for key, g in program.graphs.items() if (head := _logits_head(g)) is not None}
    generators = {definition_of(program.graphs[key]) for key in heads}
    keeps = {key for key, g in program.graphs.items() if definition_of(g) in generators}
    return DecodingPlan(takes, uses, scans, fixed, heads, keeps)


def _logits_head(graph: Graph) -> str | None:
    """The layer that computes a decoding model's logits, where it is a projection of each
    position on its own (so its input may be cut to the last positions)."""
    if graph.decode is None:
        return None
    out = next((o for o in graph.outputs if o.name == graph.decode.logits), None)
    node = graph.node(out.node) if out is not None else None
    if node is None or node.kind != "op" or node.op not in HEAD_OPS or not graph.operands(node.id):
        return None
    return node.id


def decoded_axes(graph: Graph, uses_cache: set[str]) -> set:
    """The time axes of the first inputs of the graph's cached consumers."""
    axes = set()
    for node in graph.ordered():
        if causal_attention(node) or any(key in uses_cache for key in callee_keys(node)):
            axis = _time_axis(graph, node)
            if axis is not None:
                axes.add(axis)
    return axes


def _time_axis(graph: Graph, node: Node):
    operands = graph.operands(node.id)
    if 0 not in operands:
        return None
    shape = graph.output_type(*operands[0]).shape
    return shape[1] if len(shape) > 1 else None



def computed_once_call(module: str, args: str, name: str) -> str:
    """`computed_once(cache, name, module, args)`: module(args), at the first decoding step only."""
    return f"computed_once({CACHE}, {name}, {module}{', ' + args if args else ''})"


def computed_once_line(texts: list[str], outs: list[str], module: str, name: str) -> str | None:
    """A lowering's one line `a, b = module(args)<rest>` as `a, b = computed_once(cache, name,
    module, args)<rest>` (`rest`: a view of the result, as a fused projection's `.chunk(2, dim=-1)`);
    None for a lowering of another form, which then runs at every step."""
    text = texts[0] if len(texts) == 1 else ""
    head = f"{', '.join(outs)} = {module}("
    if not text.startswith(head) or "\n" in text:
        return None
    depth, end = 1, len(head)
    while end < len(text) and depth:            # the parenthesis that closes the call
        depth += {"(": 1, ")": -1}.get(text[end], 0)
        end += 1
    rest = text[end:]
    if depth or not (rest == "" or rest.startswith(".")):
        return None
    return f"{', '.join(outs)} = {computed_once_call(module, text[len(head):end - 1], name)}{rest}"
