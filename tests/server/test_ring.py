"""The ring: balanced ownership, distinct preference lists, little movement when a node joins."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.ring import RingHolder, build_ring, load_bounds, with_node, without_node

NODE_SETS = st.lists(
    st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True), min_size=3, max_size=20, unique=True
)


@given(NODE_SETS)
def test_every_node_owns_within_15_percent_of_a_fair_share(nodes: list[str]) -> None:
    ring = build_ring(nodes)
    fair = 1 / len(nodes)
    for share in ring.ownership().values():
        assert 0.85 * fair <= share <= 1.15 * fair


@given(NODE_SETS, st.text(max_size=30), st.integers(1, 5))
def test_preference_lists_hold_distinct_nodes(nodes: list[str], key: str, replicas: int) -> None:
    preference = build_ring(nodes).preference_list(key, replicas)
    assert len(preference) == min(replicas, len(nodes))
    assert len(set(preference)) == len(preference)


@given(NODE_SETS, st.text(max_size=30))
def test_every_member_derives_the_same_ring_whatever_order_it_learned_members(
    nodes: list[str], key: str
) -> None:
    assert build_ring(nodes) == build_ring(list(reversed(nodes)))
    assert build_ring(nodes).successors(key) == build_ring(sorted(nodes)).successors(key)


@given(NODE_SETS, st.sampled_from([7, 64, 256]))
def test_every_node_owns_between_the_load_bounds(nodes: list[str], partitions: int) -> None:
    ring = build_ring(nodes, partitions)
    lower, upper = load_bounds(partitions, len(nodes))
    counts = Counter(ring.owners)
    assert all(lower <= counts[node] <= upper for node in nodes)


@pytest.mark.parametrize("newcomer", ["a-sorts-first", "n0025-sorts-in-the-middle", "zz-sorts-last"])
def test_a_join_moves_about_a_fair_share_wherever_the_new_id_sorts(newcomer: str) -> None:
    nodes = [f"n{index:04d}" for index in range(50)]
    before = build_ring(nodes, 4096)
    after = with_node(before, newcomer)
    moved = sum(old != new for old, new in zip(before.owners, after.owners, strict=True))
    optimal = 4096 / 51
    assert after.owners.count(newcomer) >= load_bounds(4096, 51)[0]
    assert moved <= 2 * optimal


def test_a_leave_moves_about_the_leavers_partitions() -> None:
    nodes = [f"n{index:04d}" for index in range(50)]
    before = build_ring(nodes, 4096)
    after = without_node(before, "n0007")
    moved = sum(old != new for old, new in zip(before.owners, after.owners, strict=True))
    assert "n0007" not in after.owners
    assert moved <= 2 * before.owners.count("n0007")


def test_removing_a_node_hands_its_partitions_to_the_rest() -> None:
    ring = without_node(build_ring(["a", "b", "c", "d"]), "b")
    assert set(ring.owners) == {"a", "c", "d"}


def test_ring_changes_go_through_one_function() -> None:
    holder = RingHolder(build_ring(["a", "b", "c"]))
    holder.change(lambda ring: with_node(ring, "d"))
    assert holder.ring.nodes() == ["a", "b", "c", "d"]


@given(NODE_SETS, st.text(max_size=30), st.integers(1, 5), st.sampled_from([7, 64, 256]))
def test_preference_lists_are_the_first_distinct_successors_and_iteration_agrees(
    nodes: list[str], key: str, replicas: int, partitions: int
) -> None:
    ring = build_ring(nodes, partitions)
    successors = ring.successors(key)
    assert sorted(successors) == ring.nodes()
    assert ring.preference_list(key, replicas) == successors[:replicas]
    assert list(ring.iter_successors(key)) == successors
    assert ring.successors_from(ring.partition_of(key)) == tuple(successors)


@given(st.sets(st.text(alphabet="abcdef", min_size=1, max_size=3), min_size=1, max_size=8), st.integers(1, 4))
def test_a_partitions_owners_are_the_preference_list_of_its_keys(nodes: set[str], replicas: int) -> None:
    ring = build_ring(nodes, 64)
    for key in ["groceries", "hardware", "x", "list-7", "z9"]:
        partition = ring.partition_of(key)
        assert ring.partition_preference_list(partition, replicas) == ring.preference_list(key, replicas)
