"""The store API on a real PostgreSQL: transactions, touched rows only, outbox, NOTIFY, replica ids."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crdt import ShoppingList
from sync_service.errors import AmbiguousListError, CorruptStateError, ListNotFoundError, UsageError
from sync_service.home import Home
from sync_service.store import ListSummary, Store, resolve_reference


def rows(store: Store) -> list[tuple[object, ...]]:
    """Every stored row of every table, for before/after comparisons."""
    connection = store._connection
    return [
        *connection.execute("SELECT id, header, title, item_count FROM lists ORDER BY id"),
        *connection.execute("SELECT list_id, key, record FROM items ORDER BY list_id, key"),
        *connection.execute("SELECT seq, list_id, delta FROM outbox ORDER BY seq"),
    ]


def test_a_new_list_has_its_title_and_no_items(store: Store) -> None:
    created = store.create("  Weekend   shop ")
    assert created.title == "Weekend shop"
    assert store.lists() == [ListSummary(created.id, "Weekend shop", 0)]
    assert store.view(created.id).items == []


def test_lists_are_ordered_by_title_ignoring_case(store: Store) -> None:
    for title in ("bakery", "Zoo trip", "Apples"):
        store.create(title)
    assert [summary.title for summary in store.lists()] == ["Apples", "bakery", "Zoo trip"]


def test_show_orders_items_by_category_then_name(store: Store) -> None:
    list_id = store.create("Groceries").id
    store.add_item(list_id, "milk", 2, category="dairy")
    store.add_item(list_id, "Bread", 1, category="bakery")
    store.add_item(list_id, "Apples", 6)
    store.add_item(list_id, "butter", 1, category="dairy")
    names = [item.name for item in store.view(list_id).items]
    assert names == ["Apples", "Bread", "butter", "milk"]


def test_adds_sum_and_set_moves_to_the_given_quantity(store: Store) -> None:
    list_id = store.create("Groceries").id
    store.add_item(list_id, "Eggs", 6)
    assert store.add_item(list_id, " eggs ", 12, 6)[1:3] == (18, 6)
    assert store.set_item(list_id, "EGGS", needed=4)[1:3] == (4, 6)
    assert store.lists()[0].items == 1


def test_every_local_edit_appends_its_delta_to_the_outbox(store: Store) -> None:
    list_id = store.create("Groceries").id
    store.add_item(list_id, "Milk", 2)
    store.set_item(list_id, "Milk", acquired=1)
    store.add_item(list_id, "Eggs", 6)
    store.remove_item(list_id, "Eggs")
    store.rename(list_id, "Weekend")
    entries = store.outbox()
    assert [entry.list_id for entry in entries] == [list_id] * 6
    rebuilt = ShoppingList("elsewhere")
    for entry in entries:
        rebuilt.merge(ShoppingList.from_bytes(entry.delta))
    assert rebuilt == store.load(list_id)
    assert rebuilt.items() == {"Milk": (2, 1)}


def test_acknowledged_outbox_entries_are_dropped_and_the_others_kept(store: Store) -> None:
    list_id = store.create("Groceries").id
    store.add_item(list_id, "Milk")
    store.add_item(list_id, "Eggs")
    first, second, third = store.outbox()
    store.acknowledge([first.seq, third.seq])
    assert store.outbox() == [second]
    assert store.outbox(after=second.seq) == []
    assert first.seq < second.seq < third.seq


def test_an_edit_rewrites_only_the_touched_item_row(store: Store) -> None:
    list_id = store.create("Groceries").id
    for name in ("Milk", "Eggs", "Bread"):
        store.add_item(list_id, name)
    versions = "SELECT key, xmin::text FROM items ORDER BY key"
    before = dict(store._connection.execute(versions).fetchall())
    store.add_item(list_id, "Eggs", 5)
    after = dict(store._connection.execute(versions).fetchall())
    assert [key for key in before if before[key] != after[key]] == ["eggs"]


def test_removing_the_last_item_deletes_its_row_and_counts_right(store: Store) -> None:
    list_id = store.create("Groceries").id
    store.add_item(list_id, "Milk")
    store.remove_item(list_id, "milk")
    assert store.lists()[0].items == 0
    assert store.view(list_id).items == []


def test_a_failed_edit_changes_nothing(store: Store) -> None:
    list_id = store.create("Groceries").id
    store.add_item(list_id, "Milk", 2)
    before = rows(store)
    with pytest.raises(UsageError):
        store.add_item(list_id, "Milk", -1)
    with pytest.raises(UsageError):
        store.add_item(list_id, "x" * 201)
    with pytest.raises(ListNotFoundError):
        store.remove_item(list_id, "Bread")
    with pytest.raises(ListNotFoundError):
        store.add_item("no-such-list", "Milk")
    assert rows(store) == before


def test_a_damaged_item_record_is_reported_and_left_as_it_was(store: Store) -> None:
    list_id = store.create("Groceries").id
    store.add_item(list_id, "Milk", 2)
    store._connection.execute("UPDATE items SET record = '\\x00ff'::bytea")
    before = rows(store)
    with pytest.raises(CorruptStateError, match="damaged"):
        store.view(list_id)
    with pytest.raises(CorruptStateError):
        store.add_item(list_id, "Milk")
    assert rows(store) == before


def test_a_listener_wakes_when_another_connection_commits(store: Store, postgres_database: str) -> None:
    store.listen()
    with Store(psycopg.connect(postgres_database, autocommit=True), store.replica_id) as writer:
        list_id = writer.create("Groceries").id
        assert store.wait_for_change(timeout=30) == {list_id}
        writer.add_item(list_id, "Milk")
    assert store.wait_for_change(timeout=30) == {list_id}


def test_a_remote_state_merges_writing_only_changed_items(store: Store) -> None:
    list_id = store.create("Groceries").id
    store.add_item(list_id, "Milk", 2)
    store.add_item(list_id, "Eggs", 6)
    remote = store.load(list_id).copy("remote")
    remote.add_item("Eggs", 12, 6)
    remote.add_item("Bread", 1)
    versions = "SELECT key, xmin::text FROM items ORDER BY key"
    before = dict(store._connection.execute(versions).fetchall())
    store.merge_remote(list_id, remote)
    after = dict(store._connection.execute(versions).fetchall())
    assert store.load(list_id).items() == {"Milk": (2, 0), "Eggs": (18, 6), "Bread": (1, 0)}
    assert after["milk"] == before["milk"]
    assert store.lists()[0].items == 3
    assert len(store.outbox()) == 3


def test_merging_a_state_the_store_already_holds_writes_and_notifies_nothing(store: Store) -> None:
    list_id = store.create("Groceries").id
    store.add_item(list_id, "Milk", 2)
    marker = store.create("Marker").id
    held = store.load(list_id).copy("remote")
    header = "SELECT xmin::text FROM lists WHERE id = %s"
    (version_before,) = store._connection.execute(header, (list_id,)).fetchone() or ("",)
    store.listen()
    store.merge_remote(list_id, held)
    store.mark_shared(marker)  # notifies after the merge: commit order is delivery order
    notified: set[str] = set()
    while marker not in notified:
        notified |= store.wait_for_change(timeout=30)
    assert list_id not in notified
    assert store._connection.execute(header, (list_id,)).fetchone() == (version_before,)
    assert store.load(list_id).items() == {"Milk": (2, 0)}


def test_merging_a_remote_list_creates_it_locally(store: Store) -> None:
    remote = ShoppingList("remote")
    remote.set_title("Shared")
    remote.add_item("Tea", 1)
    store.merge_remote("f" * 32, remote)
    assert store.lists() == [ListSummary("f" * 32, "Shared", 1)]


def test_the_replica_id_is_kept_while_the_home_is_the_same(store: Store, tmp_path: Path) -> None:
    reopened = Store.attach(store._connection, Home(tmp_path / "home"))
    assert reopened.replica_id == store.replica_id


def test_a_copied_home_takes_a_fresh_replica_id(store: Store, tmp_path: Path) -> None:
    shutil.copytree(tmp_path / "home", tmp_path / "copy", copy_function=shutil.copy2)
    copy = Store.attach(store._connection, Home(tmp_path / "copy"))
    assert copy.replica_id != store.replica_id


def test_a_home_restored_in_place_takes_a_fresh_replica_id(store: Store, tmp_path: Path) -> None:
    marker = tmp_path / "home" / "replica-marker"
    saved = marker.read_bytes()
    marker.unlink()
    marker.write_bytes(saved)  # what a restore from backup does: the same bytes in a new file
    restored = Store.attach(store._connection, Home(tmp_path / "home"))
    assert restored.replica_id != store.replica_id
    assert Store.attach(store._connection, Home(tmp_path / "home")).replica_id == restored.replica_id


GROCERIES = ListSummary("a1b2c3", "Groceries", 0)
GARDEN = ListSummary("a1f0e9", "Garden", 0)
PARTY = ListSummary("9c0d11", "Party", 0)


@pytest.mark.parametrize(
    ("reference", "expected"),
    [("a1b2c3", GROCERIES), ("groceries", GROCERIES), (" Party ", PARTY), ("a1f", GARDEN), ("9", PARTY)],
)
def test_a_list_is_named_by_id_title_or_unique_id_prefix(reference: str, expected: ListSummary) -> None:
    assert resolve_reference(reference, [GROCERIES, GARDEN, PARTY]) == expected


def test_an_ambiguous_prefix_names_every_candidate() -> None:
    with pytest.raises(AmbiguousListError, match="a1b2c3 'Groceries', a1f0e9 'Garden'"):
        resolve_reference("a1", [GROCERIES, GARDEN, PARTY])


def test_an_unknown_reference_is_not_found() -> None:
    with pytest.raises(ListNotFoundError, match="'Bakery'"):
        resolve_reference("Bakery", [GROCERIES, GARDEN, PARTY])


NAMES = st.sampled_from(["Milk", "milk ", "Eggs", "Bread", "Tea"])
QUANTITIES = st.integers(min_value=0, max_value=20)
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), NAMES, QUANTITIES, QUANTITIES),
        st.tuples(st.just("set"), NAMES, st.none() | QUANTITIES, st.none() | QUANTITIES),
        st.tuples(st.just("remove"), NAMES),
        st.tuples(st.just("rename"), st.sampled_from(["Groceries", "Weekend"])),
    ),
    max_size=12,
)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=OPERATIONS)
def test_editing_in_parts_gives_the_same_state_as_editing_the_whole_list(
    store: Store, operations: list[tuple[Any, ...]]
) -> None:
    list_id = store.create("Groceries").id
    model = ShoppingList(store.replica_id)
    model.set_title("Groceries")
    for kind, *arguments in operations:
        if kind == "add":
            store.add_item(list_id, *arguments)
            model.add_item(*arguments)
        elif kind == "set":
            store.set_item(list_id, *arguments)
            model.set_item(*arguments)
        elif kind == "remove" and arguments[0] in model:
            store.remove_item(list_id, *arguments)
            model.remove_item(*arguments)
        elif kind == "rename":
            store.rename(list_id, *arguments)
            model.set_title(*arguments)
    assert store.load(list_id) == model
    assert store.find(list_id).items == len(model)
    assert store.view(list_id).title == model.title


def test_item_reads_one_item_by_any_spelling_of_its_name(store: Store) -> None:
    list_id = store.create("Groceries").id
    store.add_item(list_id, "Whole Milk", 2)
    item = store.item(list_id, "  whole   MILK ")
    assert item is not None and (item.name, item.needed) == ("Whole Milk", 2)
    assert store.item(list_id, "Eggs") is None


def test_reshare_moves_the_state_to_a_new_id_and_empties_the_old_list_by_a_local_edit(store: Store) -> None:
    old = store.create("Groceries")
    store.add_item(old.id, "Milk", 2)
    cloud = ShoppingList("bob")
    cloud.merge(store.load(old.id))
    cloud.add_item("Eggs", 6)  # written by a member, not pulled here yet
    outbox_before = len(store.outbox())
    moved, clear = store.reshare(old.id, cloud)
    assert moved.id != old.id and len(moved.id) == 32
    assert (moved.title, moved.items, moved.shared) == ("Groceries", 2, True)
    assert store.load(moved.id).items() == {"Milk": (2, 0), "Eggs": (6, 0)}
    left = store.load(old.id)
    assert (left.title, len(left)) == ("Groceries", 0)
    former_member = cloud.copy("bob")
    former_member.merge(clear)
    assert len(former_member) == 0  # the clearing covers what the cloud held too
    new_entries = store.outbox()[outbox_before:]
    assert [entry.list_id for entry in new_entries] == [moved.id, old.id]
    assert ShoppingList.from_bytes(new_entries[0].delta).items() == {"Milk": (2, 0), "Eggs": (6, 0)}


def test_reshare_of_an_unknown_list_is_refused(store: Store) -> None:
    with pytest.raises(ListNotFoundError):
        store.reshare("0" * 32, ShoppingList("x"))


def test_a_remote_state_showing_nothing_creates_no_list(store: Store) -> None:
    state = ShoppingList("bob")
    state.add_item("Milk")
    clear = state.remove_item("Milk")
    merged = store.merge_remote("f" * 32, clear)
    assert not merged.created
    assert store.lists() == []
