"""The optimization pipeline: one list, read top to bottom.

A pass is `(graph, program) -> changed`, editing the graph it is given; the
manager hands every pass a copy, so the typed IR from inference is never
mutated.  Passes are chosen by `-O` level or by name.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..ir import Graph, Program, verify
from .attention import lower_attention_to_sdpa
from .dead_code import eliminate_dead_code
from .fuse_projections import fuse_projections
from .identities import remove_identity_ops

PassFn = Callable[[Graph, Program], bool]


@dataclass(frozen=True)
class Pass:
    name: str
    run: PassFn
    level: int          # lowest -O level that enables it
    why: str


PIPELINE: list[Pass] = [
    # Dropout(0), same-shape reshapes and self-transposes cost a kernel launch and read as noise.
    Pass("remove-identities", remove_identity_ops, 1, "drop ops that compute nothing"),
    # One GEMM for Q/K/V (K/V in cross-attention): fewer, larger matmuls; load hooks keep checkpoints.
    Pass("fuse-projections", fuse_projections, 2, "compute linear layers that share an input as one matmul"),
    # Fused attention kernels; the explicit softmax(q k^T) form stays the -O0/-O1 reference.
    Pass("sdpa", lower_attention_to_sdpa, 2, "use F.scaled_dot_product_attention"),
    # Last, so the identities removed above no longer keep their inputs alive.
    Pass("dead-code", eliminate_dead_code, 1, "drop results that reach no output"),
]

PASS_NAMES = [p.name for p in PIPELINE]


def select_passes(level: int, enable: list[str] = (), disable: list[str] = ()) -> list[Pass]:
    unknown = [n for n in [*enable, *disable] if n not in PASS_NAMES]
    if unknown:
        raise ValueError(f"unknown pass {', '.join(unknown)}; known passes: {', '.join(PASS_NAMES)}")
    return [p for p in PIPELINE if (p.level <= level or p.name in enable) and p.name not in disable]


def optimize(program: Program, passes: list[Pass], check: bool = False) -> tuple[Program, list[str]]:
    """Run the passes over a copy of every graph; returns the new program and a log of what
    each pass changed and declined (passes append details to `program.log`)."""
    graphs = {key: g.copy() for key, g in program.graphs.items()}
    result = Program(program.source, graphs, list(program.models), dict(program.model_spans))
    log: list[str] = []
    for p in passes:
        changed = []
        for graph in graphs.values():
            if p.run(graph, result):
                changed.append(graph.key)
            if check:
                verify(graph)
        details, result.log = result.log, []
        log.append(f"{p.name}: " + (f"changed {', '.join(changed)}" if changed else "no change"))
        log.extend(f"  {line}" for line in details)
    return result, log
