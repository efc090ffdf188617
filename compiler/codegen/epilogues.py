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
