"""A `scan` in forward: a plain Python loop over the positions of its sequence.

    state = initial
    scores_steps = []
    for t in range(words.size(1)):
        scores_t, state = self.decoder(words[:, t], state, memory)
        scores_steps.append(scores_t)
    scores = torch.stack(scores_steps, dim=1)

The step module is one submodule (its state_dict is one step's weights).  In a model that
decodes along the scanned axis, the key/value cache keeps the carried states between calls
(`carried`/`keep`, dlc/runtime/decoding.py), so generate() steps once per new token.
"""
from __future__ import annotations

from typing import Any

from compiler.codegen.decoding import CACHE
from compiler.codegen.interface import unpack_call
from compiler.ir import Node


def lower_scan(renderer: Any, node: Node, args: list[str | None], outs: list[str]) -> list[str]:
    """The lines of one scan node; `renderer` is the SpecializationRenderer of its graph."""
    spec, callee = node.scan, renderer.graph_of(node.op)
    sequence, carried, initial = args[0], outs[1:], args[1:1 + spec.carries]
    head = [f"{state} = {init}" for state, init in zip(carried, initial) if state != init]
    cached = (renderer.graph.key, node.id) in renderer.decoding.stepped_scans
    if cached:      # generate(): continue from the states after the positions decoded so far
        head = [f"{', '.join(carried)} = {_tuple(initial)} if {CACHE} is None else "
                f"{CACHE}.carried(self.{node.module}, {', '.join(initial)})"]
    fresh = renderer.vars.fresh
    steps, t, step_out = fresh(f"{node.outputs[0]}_steps"), fresh("t"), fresh(f"{node.outputs[0]}_t")
    call = f"self.{node.module}({renderer.call_args(node, [_position(sequence, spec.axis, t), *carried, *args[1 + spec.carries:]])})"
    body = unpack_call(renderer.result_of(node.op), [o.name for o in callee.outputs], [step_out, *carried],
                       call, fresh) + [f"{steps}.append({step_out})"]
    positions = f"range({sequence}.size({spec.axis}))"
    positions = f"reversed({positions})" if spec.reverse else positions
    loop = f"for {t} in {positions}:\n" + "\n".join(f"    {line}" for line in "\n".join(body).split("\n"))
    keep = [f"if {CACHE} is not None:\n    {CACHE}.keep(self.{node.module}, {', '.join(carried)})"] if cached else []
    order = f"{steps}[::-1]" if spec.reverse else steps      # the outputs keep the sequence's order
    return head + [f"{steps} = []", loop, *keep, f"{outs[0]} = torch.stack({order}, dim={spec.axis})"]


def _position(sequence: str, axis: int, t: str) -> str:
    """One position of the sequence: `xs[t]`, `xs[:, t]`, or `xs.select(axis, t)` further in."""
    if axis <= 2:
        return f"{sequence}[{', '.join([':'] * axis + [t])}]"
    return f"{sequence}.select({axis}, {t})"


def _tuple(names: list[str | None]) -> str:
    return str(names[0]) if len(names) == 1 else f"({', '.join(map(str, names))})"
