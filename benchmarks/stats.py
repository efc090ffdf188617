"""Ratios that survive a shared machine: from medians, from minima, and paired by round.

The benchmark's arms take turns in rounds (benchmarks/bench.py), so a burst of load from
another process falls on the arms of one round alike.  Besides the ratio of overall medians
(what the tables have always shown) and of overall minima (the run least disturbed), the
paired ratio compares each round's reference with the same round's arm (best call of each)
and reports the median over rounds and its spread: when the spread straddles 1.0 the
benchmark cannot tell the two apart at that load.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Iterator


@dataclass(frozen=True)
class Ratios:
    """reference time / arm time, three ways (above 1: the arm is faster)."""

    of_medians: float
    of_minima: float
    paired_median: float       # median over rounds of (reference's best call / arm's best call)
    paired_low: float          # the lowest round's ratio
    paired_high: float         # the highest round's ratio


def ratios(reference_rounds: list[list[float]], arm_rounds: list[list[float]]) -> Ratios:
    """Ratios of the reference's seconds to an arm's, given each one's calls grouped by round."""
    reference_all = [t for calls in reference_rounds for t in calls]
    arm_all = [t for calls in arm_rounds for t in calls]
    paired = [min(r) / min(a) for r, a in zip(reference_rounds, arm_rounds) if r and a]
    return Ratios(of_medians=statistics.median(reference_all) / statistics.median(arm_all),
                  of_minima=min(reference_all) / min(arm_all),
                  paired_median=statistics.median(paired), paired_low=min(paired), paired_high=max(paired))


def describe(r: Ratios) -> str:
    """One line for the report: the three ratios, the paired one with its range over rounds."""
    return (f"medians {r.of_medians:.3f}, minima {r.of_minima:.3f}, "
            f"paired by round {r.paired_median:.3f} ({r.paired_low:.3f}–{r.paired_high:.3f})")


def rotated_turns(names: list[str], rounds: int) -> Iterator[str]:
    """The arms' turns over `rounds` rounds, the order rotated by one each round, so that no arm
    always runs first (after another arm's caches and allocations) or last."""
    for r in range(rounds):
        shift = r % len(names)
        yield from names[shift:] + names[:shift]
