"""Digest trees: incremental updates match a rebuild, order does not matter, hashes locate differences."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from crdt import ShoppingList
from server.merkle import DEPTH, EMPTY, DigestTree, list_digest, node_index, place_of
from server.ring import build_ring
from tests.server.fakes import digest_of

LIST_IDS = st.text(alphabet="abcdefghij0123456789-", min_size=1, max_size=12)
UPDATES = st.lists(st.tuples(LIST_IDS, st.none() | st.integers(0, 2**64 - 1)), max_size=60)


def _rebuilt(updates: list[tuple[str, int | None]], partitions: int) -> DigestTree:
    final: dict[str, int | None] = {}
    for list_id, digest in updates:
        final[list_id] = digest
    tree = DigestTree(partitions)
    for list_id, digest in sorted(final.items()):
        if digest is not None:
            tree.update(list_id, digest)
    return tree


def _every_hash(tree: DigestTree) -> list[tuple[int, int, int, int]]:
    found = []
    for partition in range(tree.partitions):
        for level in range(DEPTH + 1):
            for index in range(16**level):
                value = tree.hash_at(partition, level, index)
                if value != EMPTY:
                    found.append((partition, level, index, value))
    return found


@given(UPDATES)
def test_incremental_updates_give_the_tree_a_rebuild_would(updates: list[tuple[str, int | None]]) -> None:
    tree = DigestTree(4)
    for list_id, digest in updates:
        tree.update(list_id, digest)
    rebuilt = _rebuilt(updates, 4)
    assert _every_hash(tree) == _every_hash(rebuilt)
    assert tree.list_ids() == rebuilt.list_ids()
    assert tree.held_partitions() == rebuilt.held_partitions()


@given(
    st.lists(st.tuples(LIST_IDS, st.integers(0, 2**64 - 1)), max_size=30, unique_by=lambda x: x[0]),
    st.randoms(),
)
def test_the_order_of_writes_does_not_change_any_hash(
    entries: list[tuple[str, int]], shuffler: object
) -> None:
    forward, backward = DigestTree(8), DigestTree(8)
    for list_id, digest in entries:
        forward.update(list_id, digest)
    for list_id, digest in reversed(entries):
        backward.update(list_id, digest)
    assert _every_hash(forward) == _every_hash(backward)


@given(st.lists(LIST_IDS, min_size=1, max_size=30, unique=True), st.data())
def test_one_changed_list_changes_exactly_the_nodes_on_its_path(ids: list[str], data: st.DataObject) -> None:
    before, after = DigestTree(8), DigestTree(8)
    for list_id in ids:
        before.update(list_id, 7)
        after.update(list_id, 7)
    changed = data.draw(st.sampled_from(ids))
    after.update(changed, 8)
    place = place_of(changed, 8)
    differing = {
        (p, level, index)
        for (p, level, index, value) in _every_hash(before)
        if after.hash_at(p, level, index) != value
    } | {
        (p, level, index)
        for (p, level, index, value) in _every_hash(after)
        if before.hash_at(p, level, index) != value
    }
    assert differing == {
        (place.partition, level, node_index(place.leaf, level)) for level in range(DEPTH + 1)
    }


def test_an_emptied_tree_holds_nothing() -> None:
    tree = DigestTree(4)
    tree.update("a", 1)
    tree.update("b", 2)
    tree.update("a", None)
    tree.update("b", None)
    tree.update("never-there", None)
    assert len(tree) == 0 and tree.held_partitions() == [] and _every_hash(tree) == []


def test_the_tree_uses_the_ring_partitions() -> None:
    ring = build_ring(["n1", "n2", "n3"], 64)
    for list_id in ["groceries", "hardware", "x", "list-42"]:
        assert place_of(list_id, 64).partition == ring.partition_of(list_id)


@given(st.lists(st.sampled_from(["Milk", "Eggs", "Tea", "Bread"]), max_size=8), st.randoms())
def test_equal_list_states_have_equal_digests_whatever_the_merge_order(
    names: list[str], shuffler: object
) -> None:
    deltas = [ShoppingList(f"r{index}").add_item(name) for index, name in enumerate(names)]
    forward, backward = ShoppingList("a"), ShoppingList("b")
    for delta in deltas:
        forward.merge(delta)
    for delta in reversed(deltas):
        backward.merge(delta)
    assert digest_of(forward) == digest_of(backward)
    assert digest_of(forward) == list_digest(
        forward.header_bytes(), [forward.item_bytes(k) for k in sorted(forward.item_keys(), reverse=True)]
    )
