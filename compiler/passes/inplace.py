"""Run activations and residual additions in place where their input is dead after.

`relu(bn(conv(x)))` allocates a new tensor for the ReLU, and `bn3 + shortcut`
another for the sum; when nothing else reads the input, torch can overwrite
it instead (`F.relu(x, inplace=True)`, `a.add_(b)`), saving the allocation and
a pass over memory.  This is what hand-written torchvision code does.

Safe only when the overwritten value (1) is read by this op alone and is no
output of the block, (2) comes from an op whose result is a fresh tensor that
autograd lets us overwrite (`OpDef.overwritable`: not a view, not an alias of
its input as eval-mode Dropout is, not saved for its own backward as ReLU's
output is), and (3) already has the result's shape and dtype, so an in-place
broadcast cannot fail.
"""
from __future__ import annotations

from dataclasses import replace

from compiler.ir import Graph, Node, Program
from compiler.ir.types import shapes_equal
from compiler.ops import REGISTRY



def _candidate(node: Node) -> bool:
    """An op the registry calls in-place-able (`OpDef.inplace`) that does not run in place yet."""
    if node.kind != "op" or getattr(node.attrs, "inplace", True):
        return False
    return REGISTRY[node.op].can_run_in_place(node.attrs)


def _overwritable_operand(graph: Graph, node: Node) -> str | None:
    """Why the first operand cannot be overwritten, or None when it can."""
    src, index = graph.operands(node.id)[0]
    producer = graph.node(src)
    if producer.kind != "op" or not REGISTRY[producer.op].overwritable:
        return f"`{producer.outputs[index]}` may be a view or is needed by its own backward"
    if graph.g.out_degree(src) != 1:
        return f"`{producer.outputs[index]}` is read elsewhere too"
    if any(o.node == src for o in graph.outputs):
        return f"`{producer.outputs[index]}` is an output of {graph.key}"
    before, after = graph.output_type(src, index), node.types[0] if node.types else None
    if before is None or after is None or before.dtype != after.dtype or not shapes_equal(before.shape, after.shape):
        return "the result is broadcast to another shape"
    return None


def run_in_place(graph: Graph, program: Program) -> bool:
    changed = False
    for node in graph.ordered():
        if not _candidate(node):
            continue
        reason = _overwritable_operand(graph, node)
        if reason:
            program.log.append(f"kept {node.op} `{node.outputs[0]}` ({node.span}) out of place: {reason}")
            continue
        graph.replace_node(replace(node, attrs=node.attrs.model_copy(update={"inplace": True})))
        program.log.append(f"{node.op} `{node.outputs[0]}` ({node.span}) in {graph.key} runs in place")
        changed = True
    return changed
