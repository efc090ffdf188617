"""The fast lane's sampling rule for sweeps: a parametrized test function whose members sweep over
data (every op, every diagnostic case, every compiler module, every repository file, ...) keeps
`SWEEP_KEEP` of them in the fast lane; the others are marked slow and run in the full suite.

Which members stay is decided by a hash of each member's parametrization id (the `K` lowest
CRC-32s of the ids), so it is the same in every process and on every run, and adding a case to a
sweep moves at most one other member in or out of the lane.  Members already slow (a
`pytest.mark.slow` in the file, a SLOW entry in tests/fast_lane.py) do not count as candidates, and
a sweep in REPRESENTATIVES (members chosen by a person) or in `EXEMPT` below (members that are each
a different behaviour, not samples of the same one) is left alone.

A sweep is sampled only when all its members were collected: a run that names single members
(`test_x.py::test_f[a]`) runs what it names.
"""
from __future__ import annotations

import os
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable

import pytest

# Members of a sweep kept in the fast lane; DLC_SWEEP_KEEP=N chooses another (0: no sampling), for
# measuring the lane at other values.  Session 7 kept 3; session 8 measured the lane (2 workers, same
# minute) at 73.5 s with 3 and 64.8 s with 1 (1,156 and 943 tests), the margin that keeps it under a
# minute on this machine's slower minutes, so 1.  The members a SLOW reason relies on are pinned in
# tests/fast_lane.py's REPRESENTATIVES (torchvision parity of resnet18 and mobilenet_v2, ...).
SWEEP_KEEP = int(os.environ.get("DLC_SWEEP_KEEP", "1"))

# test (node id without parameters) -> why every member of its sweep is a behaviour of its own.
# Left alone: sweeps whose members each drive their own branch of the compiler (a limit, a pass, a
# dump stage, an arithmetic failure, a loss head), and model sweeps that tests/fast_lane.py already
# trimmed by hand, whose SLOW reasons name the members that stay.
EXEMPT: dict[str, str] = {
    "tests/test_limits.py::test_a_limit_holds_exactly":
        "each row of LIMITS_TABLE is enforced by its own check, and README's table promises every one",
    "tests/test_pass_goldens.py::test_pass_golden": "one member per optimization pass, each its own rewrite",
    "tests/test_pass_goldens.py::test_pass_changes_its_golden_spec": "one member per optimization pass",
    "tests/test_hardening.py::test_compile_time_arithmetic_is_total":
        "each a different way compile-time arithmetic fails (overflow, division by zero, inf, the int limit)",
    "tests/test_hardening.py::test_non_finite_and_huge_values_from_d_never_reach_the_source":
        "each a different kind of -D value (nan, inf, huge int, huge float, ...), refused by its own branch",
    "tests/test_cli.py::test_dump_stages": "each stage (ast, ir, opt, ...) is dumped by its own printer",
    "tests/test_parser.py::test_deep_nesting_is_a_resource_limit":
        "each kind of nesting (lists, calls, unary and binary operators) is a different recursion in the parsers",
    "tests/test_parser.py::test_nesting_just_under_the_limit_is_processed_without_recursion_errors":
        "each kind of nesting is a different recursion in the parsers",
    "tests/test_hf_interface.py::test_the_loss_equals_hf_on_the_same_weights":
        "each model class computes a different loss (masked LM, causal LM, seq2seq, classification)",
    "tests/test_seq2seq.py::test_teacher_forcing_matches_hand_written_outputs_and_gradients":
        "each class is a different attention score (dot, general, concat, additive)",
    "tests/test_seq2seq.py::test_greedy_and_beam_search_match_the_hand_written_decoder":
        "each class is a different attention score (dot, general, concat, additive)",
    "tests/test_inference_build.py::test_optimized_model_computes_what_o0_computes":
        "each model takes different inference rewrites; SLOW trimmed it by hand and names the members that stay",
    "tests/test_inference_build.py::test_each_packed_kernel_computes_what_o0_computes":
        "SLOW trimmed it by hand: bert, gpt2 and t5 keep both packed kernels in the fast lane",
    "tests/test_parity_vision.py::test_parameters_match_torchvision":
        "SLOW trimmed it by hand: every VGG depth and ResNet's block kinds stay, and its reasons say so",
    "tests/test_parameterized.py::test_runtime_configuration_matches_dash_d_compile":
        "SLOW trimmed it by hand and its reasons name the members that stay (ResNet-2, MobileNetV2, ...)",
}

# test -> (the group of a member's id, what a group is): one member of each group stays in the fast
# lane, for sweeps over (behaviour x data) where every behaviour must keep a member.
PER_GROUP: dict[str, tuple[Callable[[str], str], str]] = {
    "tests/test_op_samples.py::test_sample_lowers_runs_and_has_the_inferred_type":
        (lambda member: member.rsplit("-", 1)[0], "op (every op's lowering is its own code)"),
    "tests/test_passes.py::test_every_pass_preserves_numerics":
        (lambda member: member.split("-", 1)[1], "pass (every pass alone, and -O2, against -O0)"),
    "tests/test_diagnostic_cases.py::test_diagnostic_case":
        (lambda member: member.split("::", 1)[0], "case file (each file a family of diagnostics)"),
}


def reason(kept: int, members: int, per: str = "") -> str:
    return (f"sampled: {kept} of {members} members of this sweep run in the fast lane{per}, all of them in the "
            f"full suite (tests/sweep_sampling.py)")


def _rank(item: pytest.Item) -> tuple[int, str]:
    member = item.callspec.id                     # type: ignore[attr-defined]
    return zlib.crc32(member.encode("utf-8")), member


def sampled_out(items: Iterable[pytest.Item], base: Callable[[str], str], is_slow: Callable[[pytest.Item], bool],
                chosen_by_hand: Iterable[str], args: Iterable[str]) -> dict[pytest.Item, str]:
    """The members of sweeps that leave the fast lane, each with its reason.  `base` maps a node id
    to its test's id without parameters, `is_slow` says whether an item is slow already, `args` are
    the run's command-line arguments (a sweep one of them names a member of is not sampled)."""
    named = [arg.replace("\\", "/").split("[", 1)[0] for arg in args if "::" in arg and "[" in arg]
    if SWEEP_KEEP <= 0:
        return {}
    sweeps: dict[str, list[pytest.Item]] = defaultdict(list)
    for item in items:
        if getattr(item, "callspec", None) is not None:
            sweeps[base(item.nodeid)].append(item)
    left_alone = set(chosen_by_hand) | set(EXEMPT)
    out: dict[pytest.Item, str] = {}
    for name, members in sweeps.items():
        candidates = [item for item in members if not is_slow(item)]
        if name in left_alone or len(candidates) <= SWEEP_KEEP or any(arg.endswith(name) for arg in named):
            continue
        dropped = _dropped(candidates, PER_GROUP.get(name))
        why = reason(len(candidates) - len(dropped), len(members),
                     f" (one per {PER_GROUP[name][1]})" if name in PER_GROUP else "")
        out.update((item, why) for item in dropped)
    return out


def _dropped(candidates: list[pytest.Item], grouping: tuple[Callable[[str], str], str] | None) -> list[pytest.Item]:
    """The candidates past the first SWEEP_KEEP by rank, or past the first of each group."""
    ranked = sorted(candidates, key=_rank)
    if grouping is None:
        return ranked[SWEEP_KEEP:]
    seen: set[str] = set()
    dropped = []
    for item in ranked:
        group = grouping[0](item.callspec.id)           # type: ignore[attr-defined]
        if group in seen:
            dropped.append(item)
        seen.add(group)
    return dropped
