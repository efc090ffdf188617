"""Conv-BN folding: find convolutions whose output only feeds a batch norm, and
record the pairs on the graph for the generated `optimize_for_inference()`.

In eval mode a batch norm is a per-channel affine map of its input, so it folds
into the weight and bias of the convolution before it: one op instead of two,
and one pass over the activations instead of two.  The forward code is left as
it is -- training needs the batch norm, and the reference checkpoint holds its
statistics -- so this pass only records `graph.conv_bn_folds` and asks codegen
for `optimize_for_inference()` on every model, which folds the recorded pairs
at run time, once the weights are loaded.

A pair folds when the convolution is applied once, its output is read by the
batch norm alone (not by another op, nor as a block output), and the batch
norm is applied once; the rest are declined, with the reason, in the log.
"""
from __future__ import annotations

from collections import Counter

from compiler.ir import Graph, Node, Program

# The batch norm each convolution folds with: the one over the same [B, C, *spatial] layout.
NORM_OF_CONV = {"Conv1d": "BatchNorm1d", "Conv2d": "BatchNorm2d"}


def _norm_reader(graph: Graph, conv: Node) -> Node | None:
    """The (first) batch norm reading `conv`'s output: a candidate for folding."""
    readers = [graph.node(dst) for _, dst in graph.g.out_edges(conv.id)]
    return next((r for r in readers if r.kind == "op" and r.op == NORM_OF_CONV[conv.op]), None)


def _why_not(graph: Graph, conv: Node, norm: Node, uses: Counter) -> str | None:
    """Why `norm` cannot fold into `conv`, or None when it can."""
    for layer in (conv, norm):
        if uses[layer.module] > 1:
            return f"{layer.module} is applied more than once"
    outputs = [o.name for o in graph.outputs if o.node == conv.id]
    if outputs:
        return f"its output is also the block output `{outputs[0]}`"
    others = [graph.node(dst) for _, dst in graph.g.out_edges(conv.id) if dst != norm.id]
    if others:
        return f"its output is also read by `{others[0].module or others[0].outputs[0]}` ({others[0].span})"
    if norm.attrs.num_features != conv.attrs.out_channels:
        return f"{norm.module} normalizes {norm.attrs.num_features} channels, not {conv.attrs.out_channels}"
    return None


def fold_conv_bn(graph: Graph, program: Program) -> bool:
    program.optimize_for_inference = True
    uses = Counter(node.module for node in graph.ordered() if node.module)
    folds = []
    for conv in graph.ordered():
        norm = _norm_reader(graph, conv) if conv.kind == "op" and conv.op in NORM_OF_CONV else None
        if norm is None:
            continue
        why = _why_not(graph, conv, norm, uses)
        if why is None:
            folds.append((conv.module, norm.module))
            program.log.append(f"folded {norm.module} into {conv.module} in {graph.key} ({conv.span}, {norm.span})")
        else:
            program.log.append(f"declined {conv.module} ({conv.span}) in {graph.key}: {why}")
    graph.conv_bn_folds = folds
    return bool(folds)
