"""The optimization pipeline: one list, read top to bottom.

A pass is `(graph, program) -> changed`, editing the graph it is given; the
manager hands every pass a copy, so the typed IR from inference is never
mutated.  Passes are chosen by `-O` level or by name.

A pass marked `inference_only` is correct only for a model that never trains
(drop-dropout); `select_passes` includes it only for `dlc compile --inference`
(`compile_spec(..., inference=True)`), at its level or when named.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from compiler.ir import Graph, Program, verify
from compiler.passes.attention import lower_attention_to_sdpa
from compiler.passes.cse import eliminate_common_subexpressions
from compiler.passes.dead_code import eliminate_dead_code
from compiler.passes.donation import donate_arguments
from compiler.passes.dropout import drop_dropout
from compiler.passes.fold_conv_bn import fold_conv_bn
from compiler.passes.fuse_epilogues import fuse_epilogues
from compiler.passes.fuse_projections import fuse_projections
from compiler.passes.identities import remove_identity_ops
from compiler.passes.inplace import run_in_place
from compiler.passes.reshapes import collapse_reshape_chains
from compiler.passes.scales import fold_scales
from compiler.passes.transposes import cancel_transpose_pairs

PassFn = Callable[[Graph, Program], bool]


@dataclass(frozen=True)
class Pass:
    name: str
    run: PassFn
    level: int          # lowest -O level that enables it
    why: str
    inference_only: bool = False      # only with --inference: wrong for a model that trains
    # Passes whose marks this one reads (it finds nothing to do without them): its golden runs them first.
    needs: tuple[str, ...] = ()


PIPELINE: list[Pass] = [
    # First, so the chains below see through the dropouts an inference build never needs.
    Pass("drop-dropout", drop_dropout, 1, "remove dropout from models that never train", inference_only=True),
    # Dropout(0), same-shape reshapes and self-transposes cost a kernel launch and read as noise.
    Pass("remove-identities", remove_identity_ops, 1, "drop ops that compute nothing"),
    # Chains of data-movement and scaling ops: each collapses to one op or to nothing.
    Pass("cancel-transposes", cancel_transpose_pairs, 1, "drop transposes and permutes that undo each other"),
    Pass("collapse-reshapes", collapse_reshape_chains, 1, "make a chain of reshapes one reshape"),
    Pass("fold-scales", fold_scales, 1, "multiply by one constant instead of several"),
    # Before fusion, so projections of two equal values become projections of one value.
    Pass("cse", eliminate_common_subexpressions, 2, "compute each pure value once"),
    # One GEMM for Q/K/V (K/V in cross-attention): fewer, larger matmuls; load hooks keep checkpoints.
    Pass("fuse-projections", fuse_projections, 2, "compute linear layers that share an input as one matmul"),
    # Fused attention kernels; the explicit softmax(q k^T) form stays the -O0/-O1 reference.
    Pass("sdpa", lower_attention_to_sdpa, 2, "use F.scaled_dot_product_attention"),
    # Last, so the identities removed above no longer keep their inputs alive.
    Pass("dead-code", eliminate_dead_code, 1, "drop results that reach no output"),
    # After dead-code, on the final graph: models get optimize_for_inference(), which folds these pairs.
    Pass("fold-conv-bn", fold_conv_bn, 2, "record conv/batch-norm pairs for optimize_for_inference()"),
    # Late: whether a value is dead after its reader is only settled on the final graph.  Level 0:
    # hand-written PyTorch applies ReLU and residual sums in place, and -O0 should cost no more.
    Pass("inplace", run_in_place, 0, "overwrite dead inputs of activations and residual sums"),
    # After the folds it reads and the in-place decisions it keeps for the layers it makes.
    Pass("fuse-epilogues", fuse_epilogues, 2, "mark conv/linear + sum + activation chains for fused kernels"),
    Pass("donate-arguments", donate_arguments, 2, "mark residual inputs that die at their sum, and calls that give them",
         needs=("fold-conv-bn", "inplace", "fuse-epilogues")),
]

PASS_NAMES = [p.name for p in PIPELINE]


def select_passes(level: int, enable: list[str] = (), disable: list[str] = (),
                  inference: bool = False) -> list[Pass]:
    unknown = [n for n in [*enable, *disable] if n not in PASS_NAMES]
    if unknown:
        raise ValueError(f"unknown pass {', '.join(unknown)}; known passes: {', '.join(PASS_NAMES)}")
    training = [p.name for p in PIPELINE if p.inference_only and p.name in enable and not inference]
    if training:
        raise ValueError(f"pass {', '.join(training)} is only for inference builds; add --inference")
    return [p for p in PIPELINE if (p.level <= level or p.name in enable) and p.name not in disable
            and (inference or not p.inference_only)]


def optimize(program: Program, passes: list[Pass], check: bool = False) -> tuple[Program, list[str]]:
    """Run the passes over a copy of every graph; returns the new program and a log of what
    each pass changed and declined (passes append details to `program.log`)."""
    graphs = {key: g.copy() for key, g in program.graphs.items()}
    result = Program(program.source, graphs, list(program.models), dict(program.model_spans),
                     alias_args=dict(program.alias_args))
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
