"""The class attributes that tell `optimize_for_inference()` which layers form a chain one fused
kernel may compute (the fuse-epilogues pass): `EPILOGUES` and `CONV_EPILOGUE`."""
from __future__ import annotations

from compiler.codegen.expressions import py_literal
from compiler.ir import Graph


def epilogue_lines(graphs: list[Graph]) -> list[str]:
    """Class-body lines for the chains of every specialization a class prints (those an instance
    lacks are skipped at run time, as CONV_BN_FOLDS)."""
    lines = []
    chains = list(dict.fromkeys(chain for g in graphs for chain in g.epilogues))
    if chains:
        lines += ["# Layer chains optimize_for_inference() may compute as one fused kernel: (producer, folded",
                  "# norm, the layer ending the chain, its activation, the sum's input the producer feeds or -1).",
                  "EPILOGUES = (", *(f"    {py_literal(chain)}," for chain in chains), ")"]
    wholes = [g.conv_epilogue for g in graphs]
    # Every configuration must be the same chain, but for a norm some configurations leave out.
    if None not in wholes and len({(conv, activation) for conv, _, activation in wholes}) == 1:
        conv, _, activation = wholes[0]
        norm = next((norm for _, norm, _ in wholes if norm is not None), None)
        lines += ["# This block is one convolution chain (conv, folded norm, activation): optimize_for_inference()",
                  "# may compute it as one fused kernel.",
                  f"CONV_EPILOGUE = {py_literal((conv, norm, activation))}"]
    return lines


def _merged(entries_per_graph: list[list[tuple]]) -> list[tuple]:
    """(key..., condition) entries of every specialization a class prints, one per key: dropped where
    a specialization holding the key found no condition (None), else the union of the conditions
    (an instance does not know which specialization it is, so it must meet all of them)."""
    merged: dict[tuple, set | None] = {}
    for entries in entries_per_graph:
        for *key, condition in entries:
            key = tuple(key)
            if condition is None or merged.get(key, ()) is None:
                merged[key] = None
            else:
                merged[key] = set(merged.get(key, ())) | set(condition)
    return [(*key, tuple(sorted(condition))) for key, condition in merged.items() if condition is not None]


def donation_lines(graphs: list[Graph]) -> list[str]:
    """Class-body lines for the argument-donation analysis's findings (passes/donation.py)."""
    lines = []
    overwrites = _merged([g.overwrites for g in graphs])
    if overwrites:
        lines += ["# Residual sums whose fused kernel may add into the memory of the sum's other input, which dies",
                  "# there (argument donation): (the layer ending the chain, the inputs of forward() that must be",
                  "# donated to this block first).",
                  "RESIDUAL_OVERWRITES = (", *(f"    {py_literal(entry)}," for entry in overwrites), ")"]
    donations = _merged([g.donations for g in graphs])
    if donations:
        lines += ["# Calls that hand a layer (each layer of a list) an input dying there: (the layer, its input's",
                  "# position, the inputs of forward() that must be donated to this block first).",
                  "DONATES = (", *(f"    {py_literal(entry)}," for entry in donations), ")"]
    return lines
