"""Tensor-parallel plans derived from the block structure, and `dlc check --tp N`.

The IR shows what torchtitan and HF write by hand: the projections that feed an
attention's query, key and value are column-parallel and the projection that reads
its result is row-parallel; in a feed-forward, the projections before the
element-wise part are column-parallel and the one after it row-parallel; token
embeddings (and an LM head of the same vocabulary) are vocab-parallel where the
vocabulary divides.  A fused projection whose output is split into q, k and v is
"packed": each part is sharded on its own, so a shard never cuts across them.

The plan maps module paths (with `*` for the elements of a `repeat` stack, as
`parallelize_module` and HF's `base_model_tp_plan` take them) to a style.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from compiler.diagnostics import Diagnostic, Severity, Span
from compiler.diagnostics.codes import TP_INDIVISIBLE
from compiler.ir import Graph, Node, Program
from compiler.ops import REGISTRY




def _featurewise(op: str) -> bool:
    """Acts on each feature independently, so sharding the feature dimension commutes with it:
    the element-wise ops, and dropout (element-wise too, but random, so not marked pure)."""
    return op == "Dropout" or (op in REGISTRY and REGISTRY[op].elementwise)

_LINEAR = {"Linear", "TransposedLinear"}
_PACKED = {"FusedLinear"}
# Ops between a projection and attention that work on each head alone (their input's width).
_PER_HEAD_IN_PLACE = {"Rotary"}
# Tables with a column per attention head: each rank keeps its heads' columns.
_PER_HEAD = {"RelativePositionBias"}


@dataclass(frozen=True)
class Shard:
    """One module's place in the plan."""

    path: str            # module path, `*` standing for every element of a stack
    style: str           # colwise | rowwise | packed_colwise | vocab | vocab_head | heads
    role: str            # what the module is, for messages: "query projection", "feed-forward output", ...
    span: Span
    sizes: tuple[int, ...] = ()   # the sharded extent(s): out features, in features, packed parts, vocab
    heads: int | None = None      # attention heads behind a column-parallel projection
    equal_parts: bool = False     # packed: the parts are equal in every configuration (chunk), so a
                                  # rank's shard is the same slice of each part


@dataclass
class Plan:
    shards: list[Shard] = field(default_factory=list)
    heads: list[tuple[str, int, Span, str]] = field(default_factory=list)   # (attention path, count, where,
                                                                            # "heads" | "kv_heads")
    wrap_units: list[str] = field(default_factory=list)                # repeat stacks' elements: `blocks.*`

    def as_mapping(self) -> dict[str, str]:
        """{module path: style}, the form parallelize_module and HF's tp_plan take."""
        return {s.path: s.style for s in self.shards}


# A plan listing more sharded modules than this is no plan a person or parallelize_module would
# use (blocks that each instantiate the next twice give 2**depth paths): none is derived.
MAX_PLAN_ENTRIES = 10_000


class _PlanTooLarge(Exception):
    pass


def derive_plan(program: Program, model_key: str) -> Plan:
    plan = Plan()
    try:
        _merge(plan, _relative_plan(program, model_key, {}), "")
    except _PlanTooLarge:
        return Plan()
    _deduplicate(plan)
    _keep_vocabulary_only(plan)
    return plan


def _keep_vocabulary_only(plan: Plan) -> None:
    """Sharding pays for the vocabulary, the largest table (and a head of that width, which a
    tie may share it with); small tables such as BERT's two token types stay replicated."""
    tables = [s for s in plan.shards if s.style == "vocab"]
    vocab = max((s.sizes[0] for s in tables), default=0)
    plan.shards = [s for s in plan.shards if s.style not in ("vocab", "vocab_head") or s.sizes[0] == vocab]


def _relative_plan(program: Program, key: str, memo: dict[str, Plan]) -> Plan:
    """A block's plan with paths relative to it, once per block configuration: a block used many
    times (or blocks that each use the next twice) is planned once, not once per instance."""
    if key in memo:
        return memo[key]
    graph = program.graphs[key]
    plan = Plan()
    _plan_graph(graph, "", plan)
    for node in graph.ordered():
        if node.kind == "block" and node.module:
            _merge(plan, _relative_plan(program, node.op, memo), f"{node.module}.")
        elif node.kind == "repeat" and node.module:
            plan.wrap_units.append(f"{node.module}.*")
            for layer in node.attrs:
                if layer.kind == "block":
                    _merge(plan, _relative_plan(program, layer.target, memo), f"{node.module}.*.")
    _deduplicate(plan)
    memo[key] = plan
    return plan


def _merge(plan: Plan, sub: Plan, prefix: str) -> None:
    """Add a sub-block's plan to `plan`, its paths under `prefix`."""
    if len(plan.shards) + len(sub.shards) + len(plan.heads) + len(sub.heads) > MAX_PLAN_ENTRIES:
        raise _PlanTooLarge
    plan.shards += [replace(s, path=prefix + s.path) for s in sub.shards]
    plan.heads += [(prefix + path, count, span, kind) for path, count, span, kind in sub.heads]
    plan.wrap_units += [prefix + unit for unit in sub.wrap_units]


def _deduplicate(plan: Plan) -> None:
    """Every element of a stack contributes the same `*` paths: keep each once, in order."""
    seen: dict[str, Shard] = {}
    for shard in plan.shards:
        seen.setdefault(shard.path, shard)
    plan.shards = list(seen.values())
    plan.heads = list(dict.fromkeys(plan.heads))
    plan.wrap_units = list(dict.fromkeys(plan.wrap_units))


def _producer(graph: Graph, node: Node, slot: int) -> tuple[Node, int] | None:
    operand = graph.operands(node.id).get(slot)
    return (graph.node(operand[0]), operand[1]) if operand else None


def _consumers(graph: Graph, node: Node) -> list[Node]:
    return [graph.node(dst) for _, dst in graph.g.out_edges(node.id)]


def _plan_graph(graph: Graph, prefix: str, plan: Plan) -> None:
    assigned: set[str] = set()
    for node in graph.ordered():
        if node.kind == "op" and node.op == "Attention":
            _plan_attention(graph, node, prefix, plan, assigned)
    for node in graph.ordered():
        if node.kind == "op" and node.op in _LINEAR and node.id not in assigned:
            _plan_feed_forward(graph, node, prefix, plan, assigned)
        elif node.kind == "op" and node.op == "Embedding" and node.module:
            vocab = node.attrs.num_embeddings
            plan.shards.append(Shard(prefix + node.module, "vocab", "token embedding", node.span, (vocab,)))
        elif node.kind == "op" and node.op in _PER_HEAD and node.module:
            plan.shards.append(Shard(prefix + node.module, "heads", "per-head position bias", node.span,
                                     (node.attrs.heads,), node.attrs.heads))
    for node in graph.ordered():   # what is left of the projections: a head over the vocabulary, if any
        if node.kind == "op" and node.op in _LINEAR and node.id not in assigned and node.module:
            plan.shards.append(Shard(prefix + node.module, "vocab_head", "output head", node.span,
                                     (_out_features(node),)))


def _plan_attention(graph: Graph, node: Node, prefix: str, plan: Plan, assigned: set[str]) -> None:
    heads = node.attrs.heads
    path = prefix + (node.module or node.outputs[0])
    plan.heads.append((path, heads, node.span, "heads"))
    if node.attrs.key_heads != heads:        # grouped-query attention: the key/value heads split too
        plan.heads.append((path, node.attrs.key_heads, node.span, "kv_heads"))
    for slot, role in enumerate(("query", "key", "value")):
        found = _producer(graph, node, slot)
        while found is not None and found[0].kind == "op" and found[0].op in _PER_HEAD_IN_PLACE:
            found = _producer(graph, found[0], 0)     # rotary positions turn each head's features apart
        if found is None:
            continue
        producer, _ = found
        if producer.kind == "op" and producer.op == "Split":
            packed = _producer(graph, producer, 0)
            if packed and packed[0].op in _LINEAR and packed[0].module:
                parts = tuple(int(t.shape[-1]) for t in producer.types or ())
                _add(plan, assigned, packed[0], prefix, "packed_colwise", "fused query/key/value projection",
                     parts, heads, _equal_parts(graph, packed[0]))
            continue
        if producer.kind == "op" and producer.op in _PACKED and producer.module:
            _add(plan, assigned, producer, prefix, "packed_colwise", "fused projection",
                 tuple(int(n) for n in producer.attrs.out_sizes), heads, _equal_parts(graph, producer))
        elif producer.kind == "op" and producer.op in _LINEAR and producer.module:
            _add(plan, assigned, producer, prefix, "colwise", f"{role} projection",
                 (_out_features(producer),), heads)
    for consumer in _consumers(graph, node):
        if consumer.kind == "op" and consumer.op in _LINEAR and consumer.module:
            _add(plan, assigned, consumer, prefix, "rowwise", "attention output projection", (_in_features(consumer),))


def _plan_feed_forward(graph: Graph, second: Node, prefix: str, plan: Plan, assigned: set[str]) -> None:
    """`second` is row-parallel when everything between it and the column-parallel projections
    before it works feature by feature."""
    firsts, frontier, seen = [], [second], set()
    while frontier:
        node = frontier.pop()
        for slot in graph.operands(node.id):
            found = _producer(graph, node, slot)
            if found is None or found[0].id in seen:
                continue
            producer = found[0]
            seen.add(producer.id)
            packed = _packed_source(graph, producer)
            if packed is not None and packed.id not in assigned:
                if packed.id not in {f.id for f in firsts}:
                    firsts.append(packed)
            elif producer.kind == "op" and producer.op in _LINEAR and producer.id not in assigned:
                firsts.append(producer)
            elif producer.kind == "op" and _featurewise(producer.op):
                frontier.append(producer)
            else:
                return              # something that mixes features (a norm, a reshape, an input): not a pair
    if not firsts or not second.module or any(not f.module for f in firsts):
        return
    width = _in_features(second)
    if any(any(size != width for size in _part_sizes(graph, f)) for f in firsts):
        return
    for first in firsts:
        if _is_packed(graph, first):
            parts = _part_sizes(graph, first)
            _add(plan, assigned, first, prefix, "packed_colwise", "fused feed-forward input projections", parts,
                 equal_parts=_equal_parts(graph, first))
        else:
            _add(plan, assigned, first, prefix, "colwise", "feed-forward input projection", (width,))
    _add(plan, assigned, second, prefix, "rowwise", "feed-forward output projection", (width,))


def _packed_source(graph: Graph, node: Node) -> Node | None:
    """The one projection whose output is cut into parts: a FusedLinear, or a Linear read by a Split."""
    if node.kind == "op" and node.op in _PACKED and node.module:
        return node
    if node.kind == "op" and node.op == "Split":
        found = _producer(graph, node, 0)
        if found and found[0].kind == "op" and found[0].op in _LINEAR and found[0].module:
            return found[0]
    return None


def _is_packed(graph: Graph, node: Node) -> bool:
    return node.op in _PACKED or any(c.kind == "op" and c.op == "Split" for c in _consumers(graph, node))


def _part_sizes(graph: Graph, node: Node) -> tuple[int, ...]:
    """The widths of a projection's parts: one part for a plain projection."""
    if node.op in _PACKED:
        return tuple(int(n) for n in node.attrs.out_sizes)
    split = next((c for c in _consumers(graph, node) if c.kind == "op" and c.op == "Split"), None)
    return tuple(int(n) for n in split.attrs.sizes) if split else (_out_features(node),)


def _equal_parts(graph: Graph, node: Node) -> bool:
    """Whether the parts are equal for any parameters, so the generated code cuts them with
    `chunk` (right on a shard holding the same slice of each part): the same spec expression
    each (`d_model, d_model, d_model`, not `heads * head_dim, kv_heads * head_dim, ...`)."""
    cut = node if node.op in _PACKED else next(
        (c for c in _consumers(graph, node) if c.kind == "op" and c.op == "Split"), None)
    if cut is None:
        return False
    written = _size_expressions(cut)
    if written is not None:
        return len(set(written)) == 1
    sizes = cut.attrs.out_sizes if cut.op in _PACKED else cut.attrs.sizes
    return len({int(n) for n in sizes}) == 1


def _size_expressions(node: Node) -> list[str] | None:
    """The part sizes as the spec writes them (the list given to Split or fused into a FusedLinear)."""
    call = node.call
    if call is None:
        return None
    fields = dict(call.fields or ())
    found = fields.get("out_sizes") or fields.get("sizes") or (call.args[0] if call.args else None)
    items = getattr(getattr(found, "expr", None), "items", None)
    return [str(item) for item in items] if items else None


def _add(plan: Plan, assigned: set[str], node: Node, prefix: str, style: str, role: str, sizes: tuple[int, ...],
         heads: int | None = None, equal_parts: bool = False) -> None:
    assigned.add(node.id)
    plan.shards.append(Shard(prefix + node.module, style, role, node.span, sizes, heads, equal_parts))


def _out_features(node: Node) -> int:
    return node.attrs.out_features


def _in_features(node: Node) -> int:
    return node.attrs.in_features


def check_tensor_parallel(program: Program, tp: int) -> list[Diagnostic]:
    """Every head count and every sharded width must divide by `tp`; vocabularies that do not
    are left replicated (not an error).  Head counts come first: when they do not divide, the
    widths built from them are not reported as well."""
    diagnostics: list[Diagnostic] = []
    for _, key in program.models:
        plan = derive_plan(program, key)
        found = [_indivisible(f"{name}={heads} is not divisible by tp={tp}: each rank must hold whole attention "
                              f"{'key/value ' if name == 'kv_heads' else ''}heads (`{path}`)", span, heads, tp)
                 for path, heads, span, name in plan.heads if heads % tp]
        if not found:
            found = [_indivisible(f"the {s.role} `{s.path}` is sharded {s.style} across {_extent(s)}, "
                                  f"which is not divisible by tp={tp}", s.span, _bad(s, tp), tp)
                     for s in plan.shards if s.style not in ("vocab", "vocab_head") and _bad(s, tp)]
        diagnostics.extend(d for d in found if all((d.span, d.message) != (o.span, o.message) for o in diagnostics))
    return _once_per_line(diagnostics)


def _bad(shard: Shard, tp: int) -> int:
    return next((size for size in shard.sizes if size % tp), 0)


def _extent(shard: Shard) -> str:
    if shard.style == "packed_colwise":
        return f"parts of {', '.join(map(str, shard.sizes))} features"
    return f"{shard.sizes[0]} features"


def _once_per_line(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    seen: set[tuple[str, int]] = set()
    kept = []
    for d in diagnostics:
        if (d.span.file, d.span.line) not in seen:
            seen.add((d.span.file, d.span.line))
            kept.append(d)
    return kept


def _indivisible(message: str, span: Span, value: int, tp: int) -> Diagnostic:
    fits = [n for n in range(2, min(value, 64) + 1) if value % n == 0][:6]
    hint = (f"choose tp among {', '.join(map(str, fits))} (they divide {value}), or change the model's sizes"
            if fits else f"{value} has no divisor to shard by: change the model's sizes")
    return Diagnostic(TP_INDIVISIBLE, message, span, Severity.ERROR, (), hint)
