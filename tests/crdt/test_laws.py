"""Every CRDT obeys the join-semilattice laws and converges under any delivery schedule."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.crdt.laws import REPLICAS, CrdtSpec, histories
from tests.crdt.specs import ALL_SPECS

by_name = pytest.mark.parametrize("spec", ALL_SPECS, ids=[spec.name for spec in ALL_SPECS])


def joined(spec: CrdtSpec[Any], *states: Any) -> Any:
    result = spec.copy(states[0], "observer")
    for state in states[1:]:
        spec.merge(result, state)
    return result


def observed_equal(spec: CrdtSpec[Any], left: Any, right: Any) -> bool:
    """Both what a user sees and the replicated state itself must agree."""
    return spec.observe(left) == spec.observe(right) and left == right


@by_name
@given(data=st.data())
def test_merge_is_commutative(spec: CrdtSpec[Any], data: st.DataObject) -> None:
    (a, b, _), _ = data.draw(histories(spec))
    left, right = joined(spec, a, b), joined(spec, b, a)
    assert observed_equal(spec, left, right)


@by_name
@given(data=st.data())
def test_merge_is_associative(spec: CrdtSpec[Any], data: st.DataObject) -> None:
    (a, b, c), _ = data.draw(histories(spec))
    left = joined(spec, joined(spec, a, b), c)
    right = joined(spec, a, joined(spec, b, c))
    assert observed_equal(spec, left, right)


@by_name
@given(data=st.data())
def test_merge_is_idempotent(spec: CrdtSpec[Any], data: st.DataObject) -> None:
    (a, _, _), deltas = data.draw(histories(spec))
    once = joined(spec, a)
    twice = joined(spec, a, a)
    assert observed_equal(spec, once, twice)
    for delta in deltas:
        spec.merge(once, delta)
        before = spec.observe(once)
        spec.merge(once, delta)
        assert spec.observe(once) == before


@by_name
@given(data=st.data())
def test_a_delta_merged_into_any_state_equals_the_mutation(spec: CrdtSpec[Any], data: st.DataObject) -> None:
    (x, y, _), _ = data.draw(histories(spec))
    mutated = spec.copy(x, REPLICAS[0])
    delta = data.draw(spec.operations)(mutated)
    via_delta = joined(spec, y, x)
    spec.merge(via_delta, delta)
    via_state = joined(spec, y, mutated)
    assert observed_equal(spec, via_delta, via_state)


@by_name
@given(data=st.data(), seed=st.integers(0, 2**32))
def test_replicas_converge_whatever_the_order_loss_and_duplication_of_deltas(
    spec: CrdtSpec[Any], data: st.DataObject, seed: int
) -> None:
    replicas, deltas = data.draw(histories(spec))
    shuffle = random.Random(seed)
    for replica in replicas:
        resent = deltas + shuffle.sample(deltas, k=len(deltas) // 2)  # some deltas arrive twice
        shuffle.shuffle(resent)
        for delta in resent:
            spec.merge(replica, delta)
    reference = spec.empty("reference")
    for delta in deltas:
        spec.merge(reference, delta)
    for replica in replicas:
        assert observed_equal(spec, replica, reference)


@pytest.mark.parametrize("spec", [s for s in ALL_SPECS if s.round_trip], ids=lambda s: s.name)
@given(data=st.data())
def test_encoding_round_trips(spec: CrdtSpec[Any], data: st.DataObject) -> None:
    replicas, deltas = data.draw(histories(spec))
    assert spec.round_trip is not None
    for state in [*replicas, *deltas]:
        assert spec.round_trip(state) == state
