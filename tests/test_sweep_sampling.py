"""The fast lane's sampling rule for sweeps (tests/sweep_sampling.py), on stand-in items."""
from __future__ import annotations

from types import SimpleNamespace


class _Item(SimpleNamespace):
    __hash__ = object.__hash__                 # pytest's items hash by identity

import pytest

from tests import sweep_sampling
from tests.sweep_sampling import EXEMPT, PER_GROUP, sampled_out

SWEEP_KEEP = 3


@pytest.fixture(autouse=True)
def _keep_three(monkeypatch):
    """The rule keeping 3 (where which 3 stay can be seen to depend on nothing but the ids), whatever
    default or DLC_SWEEP_KEEP this run has."""
    monkeypatch.setattr(sweep_sampling, "SWEEP_KEEP", SWEEP_KEEP)


def _items(test: str, members: list[str]) -> list[SimpleNamespace]:
    return [_Item(nodeid=f"{test}[{member}]", callspec=SimpleNamespace(id=member)) for member in members]


def _base(nodeid: str) -> str:
    return nodeid.split("[", 1)[0]


def _kept(items, slow=frozenset(), by_hand=(), args=()) -> set[str]:
    out = sampled_out(items, _base, lambda item: item.callspec.id in slow, by_hand, args)
    return {item.callspec.id for item in items if item not in out and item.callspec.id not in slow}


TEST = "tests/test_x.py::test_sweep"
MEMBERS = [f"case{i}" for i in range(40)]


def test_a_sweep_keeps_the_same_members_whatever_their_order():
    kept = _kept(_items(TEST, MEMBERS))
    assert len(kept) == SWEEP_KEEP
    assert _kept(_items(TEST, MEMBERS[::-1])) == kept


def test_adding_a_member_moves_at_most_one_member_in_or_out():
    kept = _kept(_items(TEST, MEMBERS))
    for extra in ("new", "case40", "zzz", "a"):
        grown = _kept(_items(TEST, [*MEMBERS, extra]))
        assert len(grown) == SWEEP_KEEP and len(kept - grown) <= 1


def test_the_reason_says_how_many_stay():
    items = _items(TEST, MEMBERS)
    reasons = set(sampled_out(items, _base, lambda item: False, (), ()).values())
    assert reasons == {sweep_sampling.reason(SWEEP_KEEP, len(MEMBERS))}
    assert f"sampled: {SWEEP_KEEP} of {len(MEMBERS)} members" in reasons.pop()


def test_members_already_slow_are_not_candidates():
    slow = frozenset(MEMBERS[:-2])
    assert _kept(_items(TEST, MEMBERS), slow=slow) == set(MEMBERS[-2:])


def test_small_sweeps_hand_chosen_exempt_and_named_ones_are_left_alone():
    small = MEMBERS[:SWEEP_KEEP]
    assert _kept(_items(TEST, small)) == set(small)
    assert _kept(_items(TEST, MEMBERS), by_hand=[TEST]) == set(MEMBERS)
    exempt = next(iter(EXEMPT))
    assert _kept(_items(exempt, MEMBERS)) == set(MEMBERS)
    assert _kept(_items(TEST, MEMBERS), args=[f"/somewhere/{TEST}[case7]"]) == set(MEMBERS)
    assert len(_kept(_items(TEST, MEMBERS), args=["tests/test_x.py::test_other[case7]"])) == SWEEP_KEEP


def test_a_grouped_sweep_keeps_one_member_of_each_group():
    test = "tests/test_op_samples.py::test_sample_lowers_runs_and_has_the_inferred_type"
    assert test in PER_GROUP
    members = [f"{op}-{i}" for op in ("Conv2d", "Linear", "Max-Pool") for i in range(5)]
    kept = _kept(_items(test, members))
    assert sorted(member.rsplit("-", 1)[0] for member in kept) == ["Conv2d", "Linear", "Max-Pool"]


def test_keeping_zero_turns_sampling_off(monkeypatch):
    monkeypatch.setattr(sweep_sampling, "SWEEP_KEEP", 0)
    assert _kept(_items(TEST, MEMBERS)) == set(MEMBERS)
