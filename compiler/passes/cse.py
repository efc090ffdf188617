"""Common-subexpression elimination: compute each pure value once.

Two op nodes with the same op, equal attributes and the same operands (the same
producer and output index in every slot; `a + b` matches `b + a`) compute the
same tensor when the op is pure (no randomness, no state: `OpDef.is_pure`) and
holds no layer.  The later one goes; its readers read the earlier one, which
keeps the later one's spans.  Merging can make later nodes equal in turn, so the
pass repeats to a fixpoint.

Layers are left alone even when one layer is applied twice to the same value:
the generated code keeps every call a spec makes to a module (forward hooks,
call counts).  Each block is its own graph, so CSE finds repeats within a block;
equal values computed in two different blocks are not merged.
"""
from __future__ import annotations

from typing import Any

from compiler.ir import Graph, Node, Program
from compiler.ops import REGISTRY
from compiler.passes.rewrite import describe, each_node, reroute

def _key(graph: Graph, node: Node) -> tuple[Any, ...]:
    operands = graph.operands(node.id)
    slots = tuple(sorted(operands.items()))
    if REGISTRY[node.op].commutative and len(operands) == 2:
        slots = tuple(sorted(operands.values()))
    return node.op, node.module, _hashable(node.attrs), slots


def _hashable(attrs: Any) -> Any:
    try:
        hash(attrs)
        return attrs
    except TypeError:
        return repr(attrs)


def _why_not(node: Node) -> str | None:
    if node.module is not None:
        return f"the layer `{node.module}` is called twice, and every call is kept"
    if not REGISTRY[node.op].is_pure(node.attrs):
        return "it is random or stateful"
    return None


def _merge_once(graph: Graph, program: Program, declined: set[str]) -> bool:
    seen: dict[tuple[Any, ...], Node] = {}
    changed = False
    for node in each_node(graph):
        if node.kind != "op":
            continue
        key = _key(graph, node)
        first = seen.setdefault(key, node)
        if first is node:
            continue
        why = _why_not(node)
        if why is None:
            reroute(graph, node, [(first.id, i) for i in range(len(node.outputs))])
            program.log.append(f"merged {describe(node)} into `{first.outputs[0]}` ({first.span}) in {graph.key}")
            changed = True
        elif node.id not in declined:
            declined.add(node.id)
            program.log.append(f"declined {describe(node)} in {graph.key}: repeats `{first.outputs[0]}` "
                               f"({first.span}), but {why}")
    return changed


def eliminate_common_subexpressions(graph: Graph, program: Program) -> bool:
    changed = False
    declined: set[str] = set()        # node ids, reported once rather than on every round
    while _merge_once(graph, program, declined):
        changed = True
    return changed
