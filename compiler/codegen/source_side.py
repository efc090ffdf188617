"""The source side of an encoder-decoder: the values a decoding step computes the same way at
every step, because they read no input along the decoded time axis (the encoder over the
source ids, and each cross-attention's keys and values of the encoder output).

generate() calls the model once per new token with the same source.  Where such a value feeds
the decoder step, the generated forward computes it through `computed_once` (dlc/runtime/
decoding.py): at the first step with a cache, and read back from the cache after, as HF's
`generate` runs the encoder once and caches the cross-attention keys and values.

Which values are fixed is a property of the instance: a model's inputs without the decoded
axis are fixed; a block called with the cache gets, for each of its inputs, whether every such
call passes it a fixed value (a cross-attention's `memory`), and so on down.
"""
from __future__ import annotations

from compiler.check.decoding import callee_keys
from compiler.ir import Graph, Node, Program


def fixed_values(program: Program, cached: set[str], decoded_axes) -> dict[str, frozenset[str]]:
    """Per graph key, the ids of its nodes whose values are the same at every decoding step: for
    the models with a decoder step (`cached`, their calls pass the cache on) and the blocks they
    call with the cache and some fixed input.  `decoded_axes(graph)`: the axes that grow."""
    fixed_inputs: dict[str, set[str]] = {}           # graphs called with the cache: their fixed inputs
    found: dict[str, frozenset[str]] = {}
    for key in _callers_first(program, {k for k in cached if program.graphs[k].is_model}):
        graph = program.graphs[key]
        if key in fixed_inputs:   # called with the cache (a model applied by another one too)
            inputs = fixed_inputs[key]
        elif graph.is_model and key in cached:
            axes = decoded_axes(graph)
            inputs = {i for i in graph.inputs if axes and not axes & set(graph.node(i).attrs.shape)}
        else:
            continue              # called only where no cache goes (inside a call computed once)
        found[key] = fixed = _fixed_nodes(graph, inputs, cached)
        for node in graph.ordered():
            if node.id in fixed:
                continue          # a call computed once as a whole: what is inside it needs no cache
            for callee, slots in _fixed_slots(graph, node, fixed).items():
                names = program.graphs[callee].inputs
                given = {names[s] for s in slots if s < len(names)}
                fixed_inputs[callee] = fixed_inputs[callee] & given if callee in fixed_inputs else given
    return {key: fixed for key, fixed in found.items() if key in cached or fixed_inputs.get(key)}


def computed_once(graph: Graph, node: Node, fixed: frozenset[str]) -> bool:
    """Whether a call computes a fixed value the decoder step reads: it is worth computing once."""
    if node.id not in fixed or node.kind == "input":
        return False
    return any(consumer not in fixed for consumer in graph.g.successors(node.id))


def _fixed_nodes(graph: Graph, fixed_inputs: set[str], cached: set[str]) -> frozenset[str]:
    """The nodes that read fixed values only.  A call of a block with its own decoder step never
    is: its causal attention appends to the cache at every step."""
    fixed: set[str] = set()
    for node in graph.ordered():
        if node.kind == "input":
            if node.id in fixed_inputs:
                fixed.add(node.id)
        elif not any(key in cached for key in callee_keys(node)) and \
                all(src in fixed for src, _ in graph.operands(node.id).values()):
            fixed.add(node.id)
    return frozenset(fixed)


def _fixed_slots(graph: Graph, node: Node, fixed: frozenset[str]) -> dict[str, set[int]]:
    """callee key -> the input slots a call passes fixed values to (a repeat's carried slot 0
    changes from layer to layer)."""
    slots = {slot for slot, (src, _) in graph.operands(node.id).items() if src in fixed}
    if node.kind == "repeat":
        slots.discard(0)
    return {key: slots for key in callee_keys(node)}


def _callers_first(program: Program, roots: set[str]) -> list[str]:
    """The graphs reachable from the cached ones, each after every graph that calls it."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(key: str) -> None:
        if key in seen or key not in program.graphs:
            return
        seen.add(key)
        for node in program.graphs[key].ordered():
            for callee in callee_keys(node):
                visit(callee)
        order.append(key)

    for key in sorted(roots):
        visit(key)
    return order[::-1]
