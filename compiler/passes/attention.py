"""Lower the attention core to torch's fused scaled_dot_product_attention.

Numerically the same computation (to float tolerance); on CUDA it selects the
flash or memory-efficient kernels, and a purely causal mask becomes `is_causal`
instead of a materialized [T, T] tensor.  Sliding-window attention keeps the explicit form.
"""
from __future__ import annotations

from dataclasses import replace

from compiler.ir import Graph, Program


def lower_attention_to_sdpa(graph: Graph, program: Program) -> bool:
    changed = False
    for node in graph.ordered():
        if node.kind == "op" and node.op == "Attention" and not node.attrs.fused \
                and node.attrs.window is None:     # the fused form has no band mask; the explicit one stays
            graph.replace_node(replace(node, attrs=node.attrs.model_copy(update={"fused": True})))
            changed = True
    return changed
