"""benchmarks/stats.py: the benchmark's ratios from medians, minima and round-paired minima."""
from __future__ import annotations

import pytest

from benchmarks.stats import describe, ratios, rotated_turns


def test_paired_ratio_cancels_load_that_falls_on_one_round():
    # round 2 is three times slower for both arms (another process's burst): the medians of the
    # pooled calls mix loads, the paired ratio sees the arm 10% faster in every round
    reference = [[1.0, 1.1], [3.0, 3.3], [1.0, 1.05]]
    arm = [[1.0 / 1.1, 1.0], [3.0 / 1.1, 3.2], [1.0 / 1.1, 0.99]]
    r = ratios(reference, arm)
    assert r.paired_median == pytest.approx(1.1)
    assert r.paired_low == pytest.approx(1.1) and r.paired_high == pytest.approx(1.1)
    assert r.of_minima == pytest.approx(1.1)
    assert r.of_medians == pytest.approx(1.075 / 0.995)


def test_spread_over_rounds_is_reported():
    r = ratios([[2.0], [2.0], [2.0]], [[1.0], [2.0], [4.0]])
    assert (r.paired_low, r.paired_median, r.paired_high) == (0.5, 1.0, 2.0)
    assert describe(r) == "medians 1.000, minima 2.000, paired by round 1.000 (0.500–2.000)"


def test_rotated_turns_give_each_arm_one_turn_per_round_and_each_its_turn_first():
    turns = list(rotated_turns(["a", "b", "c"], 4))
    rounds = [turns[i:i + 3] for i in range(0, len(turns), 3)]
    assert rounds == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]
