"""The shopping-list semantics people feel, one scenario per test (docs/crdt.md tells the same stories)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crdt import ShoppingList, new_replica_id
from tests.crdt.laws import histories
from tests.crdt.specs import SHOPPING_LIST


def synced(*replicas: ShoppingList) -> None:
    """Exchange full states until every replica has everything."""
    for target in replicas:
        for source in replicas:
            target.merge(source)
    for target in replicas:
        for source in replicas:
            target.merge(source)


def test_worked_example_both_replicas_end_with_milk_bread_and_eighteen_eggs() -> None:
    a, b = ShoppingList("A"), ShoppingList("B")
    a_deltas = [a.add_item("Milk", 2), a.add_item("Eggs", 6)]
    b_deltas = [b.add_item("Bread", 1), b.add_item("Eggs", 12, 6)]
    for delta in b_deltas:
        a.merge(delta)
    for delta in a_deltas:
        b.merge(delta)
    expected = {"Milk": (2, 0), "Bread": (1, 0), "Eggs": (18, 6)}
    assert a.items() == expected
    assert b.items() == expected
    assert a == b


def test_concurrent_remove_keeps_only_the_unobserved_increment() -> None:
    a, b = ShoppingList("A"), ShoppingList("B")
    b.merge(a.add_item("Eggs", 6))
    removal = b.remove_item("Eggs")
    increment = a.add_item("Eggs", 2)
    a.merge(removal)
    b.merge(increment)
    assert a.items() == b.items() == {"Eggs": (2, 0)}


def test_concurrent_remove_keeps_an_unobserved_increment_from_a_replica_that_had_added_before() -> None:
    a, b = ShoppingList("A"), ShoppingList("B")
    b.merge(a.add_item("Eggs", 6))
    removal = b.remove_item("Eggs")
    a.merge(a.add_item("Eggs", 1))
    a.merge(removal)
    assert a.items() == {"Eggs": (1, 0)}


def test_re_adding_after_a_remove_starts_from_zero() -> None:
    shopping = ShoppingList("A")
    shopping.add_item("Eggs", 6, 3)
    shopping.remove_item("eggs")
    shopping.add_item("Eggs", 2)
    assert shopping.items() == {"Eggs": (2, 0)}


def test_two_concurrent_removes_never_drive_a_quantity_negative() -> None:
    a, b, c = ShoppingList("A"), ShoppingList("B"), ShoppingList("C")
    seed = a.add_item("Eggs", 6, 2)
    b.merge(seed)
    c.merge(seed)
    b_removal, c_removal = b.remove_item("Eggs"), c.remove_item("Eggs")
    late_add = a.add_item("Eggs", 1)
    for replica in (a, b, c):
        for delta in (b_removal, c_removal, late_add, b_removal):
            replica.merge(delta)
    assert a.items() == b.items() == c.items() == {"Eggs": (1, 0)}


def test_two_concurrent_removes_of_everything_leave_the_item_absent() -> None:
    a, b = ShoppingList("A"), ShoppingList("B")
    b.merge(a.add_item("Eggs", 6))
    a_removal, b_removal = a.remove_item("Eggs"), b.remove_item("Eggs")
    a.merge(b_removal)
    b.merge(a_removal)
    assert a.items() == b.items() == {}
    assert a == b


def test_an_add_wins_over_a_concurrent_remove() -> None:
    a, b = ShoppingList("A"), ShoppingList("B")
    b.merge(a.add_item("Milk", 1))
    a.remove_item("Milk")
    b.add_item("Milk", 1)
    synced(a, b)
    assert a.items() == b.items() == {"Milk": (1, 0)}


def test_an_update_concurrent_with_a_remove_keeps_the_item_holding_only_the_update_s_change() -> None:
    a, b = ShoppingList("A"), ShoppingList("B")
    b.merge(a.add_item("Milk", 1))
    a.remove_item("Milk")
    b.set_item("Milk", needed=3, category="dairy")  # B moves needed by +2 from the 1 it sees
    synced(a, b)
    assert a.items() == b.items() == {"Milk": (2, 0)}
    view = a.item("Milk")
    assert view is not None and view.category == "dairy"


def test_names_that_differ_only_in_case_or_spacing_are_one_item_shown_as_last_written() -> None:
    shopping = ShoppingList("A")
    shopping.add_item("olive oil", 1)
    shopping.add_item("  Olive   Oil ", 1)
    assert shopping.items() == {"Olive Oil": (2, 0)}
    assert "OLIVE OIL" in shopping


def test_concurrent_spellings_resolve_to_the_same_display_name_everywhere() -> None:
    a, b = ShoppingList("A"), ShoppingList("B")
    a.add_item("milk", 1)
    b.add_item("MILK", 1)
    synced(a, b)
    assert a.items() == b.items()
    assert list(a.items().values()) == [(2, 0)]


def test_concurrent_decrements_below_zero_show_zero_and_the_next_edit_starts_from_what_is_shown() -> None:
    a, b = ShoppingList("A"), ShoppingList("B")
    b.merge(a.add_item("Eggs", 5))
    a_lowering, b_lowering = a.set_item("Eggs", needed=2), b.set_item("Eggs", needed=2)
    a.merge(b_lowering)
    b.merge(a_lowering)
    assert a.items() == b.items() == {"Eggs": (0, 0)}  # 5 - 3 - 3 would be -1: never shown below zero
    b.merge(a.add_item("Eggs", 3))
    assert a.items() == b.items() == {"Eggs": (3, 0)}


def test_set_item_moves_to_the_target_and_leaves_unspecified_quantities_alone() -> None:
    shopping = ShoppingList("A")
    shopping.add_item("Flour", 2, 1)
    shopping.set_item("Flour", needed=5)
    assert shopping.items() == {"Flour": (5, 1)}
    shopping.set_item("Flour", acquired=5)
    assert shopping.items() == {"Flour": (5, 5)}


def test_set_item_on_an_absent_item_creates_it_with_zero_for_unspecified_quantities() -> None:
    shopping = ShoppingList("A")
    shopping.set_item("Salt", acquired=1)
    assert shopping.items() == {"Salt": (0, 1)}


def test_removing_an_absent_item_returns_an_empty_delta() -> None:
    shopping = ShoppingList("A")
    shopping.add_item("Milk")
    delta = shopping.remove_item("Bread")
    assert delta.is_empty()
    assert shopping.items() == {"Milk": (1, 0)}


def test_merging_a_delta_twice_changes_nothing() -> None:
    a, b = ShoppingList("A"), ShoppingList("B")
    delta = a.add_item("Milk", 2)
    b.merge(delta)
    once = b.copy()
    b.merge(delta)
    assert b == once
    assert b.items() == {"Milk": (2, 0)}


def test_details_and_title_are_registers_where_the_last_write_wins() -> None:
    a, b = ShoppingList("A"), ShoppingList("B")
    b.merge(a.set_title("Groceries"))
    b.merge(a.add_item("Milk", 1, category="dairy", unit="l", note="oat"))
    b.set_item("Milk", note="whole")
    b.set_title("Weekly shop")
    a.merge(b)
    view = a.item("milk")
    assert view is not None
    assert (view.category, view.unit, view.note) == ("dairy", "l", "whole")
    assert a.title == b.title == "Weekly shop"


def test_a_remove_clears_details_so_a_re_added_item_starts_blank() -> None:
    shopping = ShoppingList("A")
    shopping.add_item("Milk", 1, category="dairy")
    shopping.remove_item("Milk")
    shopping.add_item("Milk", 1)
    view = shopping.item("Milk")
    assert view is not None and view.category == ""


def test_equality_compares_replicated_state_not_replica_ids() -> None:
    a = ShoppingList("A")
    a.add_item("Milk", 2)
    b = ShoppingList("B")
    b.merge(a)
    assert a == b
    assert a.replica != b.replica


def test_decoding_without_a_replica_id_takes_a_fresh_one() -> None:
    original = ShoppingList(new_replica_id())
    original.add_item("Milk")
    restored = ShoppingList.from_bytes(original.to_bytes())
    again = ShoppingList.from_bytes(original.to_bytes())
    assert restored == original
    assert len({original.replica, restored.replica, again.replica}) == 3


def test_new_replica_ids_are_distinct() -> None:
    assert len({new_replica_id() for _ in range(10_000)}) == 10_000


def test_dots_are_unique_per_replica_so_equal_names_on_two_replicas_never_collide() -> None:
    a, b = ShoppingList("A"), ShoppingList("B")
    a_delta, b_delta = a.add_item("Milk"), b.add_item("Milk")
    removal = a.remove_item("Milk")  # observed only A's write
    b.merge(a_delta)
    b.merge(removal)
    assert b.items() == {"Milk": (1, 0)}
    del b_delta


def test_in_order_deltas_keep_the_causal_context_at_one_entry_per_replica() -> None:
    replicas = [ShoppingList(name) for name in "ABC"]
    for round_number in range(300):
        for replica in replicas:
            delta = replica.add_item(f"item {round_number % 40}")
            for other in replicas:
                other.merge(delta)
    context = replicas[0].context
    assert context.cloud == frozenset()
    assert context.version_vector == {"A": 300, "B": 300, "C": 300}


def test_out_of_order_deltas_sit_in_the_dot_cloud_until_the_gap_fills() -> None:
    a, b = ShoppingList("A"), ShoppingList("B")
    first, second = a.add_item("Milk"), a.add_item("Eggs")
    b.merge(second)
    assert b.context.cloud == {("A", 2)}
    b.merge(first)
    assert b.context.cloud == frozenset()
    assert b.context.version_vector == {"A": 2}


def test_a_partial_list_edits_one_item_and_its_delta_updates_the_whole_list() -> None:
    whole = ShoppingList("A")
    for name in ("Milk", "Eggs", "Bread"):
        whole.add_item(name, 2)
    part = ShoppingList.from_parts(whole.header_bytes(), [whole.item_bytes("eggs") or b""], "A")
    assert part.items() == {"Eggs": (2, 0)}
    whole.merge(part.set_item("Eggs", needed=7))
    assert whole.items() == {"Milk": (2, 0), "Eggs": (7, 0), "Bread": (2, 0)}
    rebuilt = ShoppingList.from_parts(
        whole.header_bytes(), [whole.item_bytes(k) or b"" for k in whole.item_keys()]
    )
    assert rebuilt == whole


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.add_item("", 1), "empty"),
        (lambda s: s.add_item("   ", 1), "empty"),
        (lambda s: s.add_item("x" * 201, 1), "at most 200"),
        (lambda s: s.add_item("Milk", -1), "between 0"),
        (lambda s: s.add_item("Milk", 1.5), "whole number"),
        (lambda s: s.add_item("Milk", True), "whole number"),
        (lambda s: s.set_item("Milk", acquired=10**7), "between 0"),
        (lambda s: s.add_item(7, 1), "must be a str"),
        (lambda s: s.set_item("Milk", note="n" * 1001), "at most 1000"),
        (lambda s: s.set_title(""), "title"),
    ],
)
def test_bad_input_raises_a_clear_value_error_and_changes_nothing(call, message) -> None:  # type: ignore[no-untyped-def]
    shopping = ShoppingList("A")
    shopping.add_item("Milk", 1)
    before = shopping.copy()
    with pytest.raises(ValueError, match=message):
        call(shopping)
    assert shopping == before


def test_a_replica_id_must_be_a_short_non_empty_string() -> None:
    for bad in ("", "x" * 65, None, 5):
        with pytest.raises(ValueError):
            ShoppingList(bad)  # type: ignore[arg-type]


def test_editing_some_details_leaves_no_gaps_in_the_replica_s_own_dots() -> None:
    shopping = ShoppingList("A")
    shopping.set_item("Milk", note="oat")
    shopping.set_item("Milk", category="dairy")
    shopping.set_item("Milk", unit="l", note="whole")
    assert shopping.context.cloud == frozenset()
    assert shopping.context.version_vector == {"A": 7}


def test_overwriting_one_detail_keeps_the_others() -> None:
    a, b = ShoppingList("A"), ShoppingList("B")
    b.merge(a.add_item("Milk", 1, category="dairy", unit="l"))
    a.merge(b.set_item("Milk", note="oat"))
    view = a.item("Milk")
    assert view is not None
    assert (view.category, view.unit, view.note) == ("dairy", "l", "oat")


@given(operations=st.lists(SHOPPING_LIST.operations, max_size=40))
def test_a_replica_s_own_edits_always_compact_into_its_version_vector(operations: list[Any]) -> None:
    shopping = ShoppingList("A")
    for operation in operations:
        operation(shopping)
    assert shopping.context.cloud == frozenset()


@given(histories(SHOPPING_LIST), st.data())
def test_merge_changes_names_exactly_the_item_records_that_changed(
    history: tuple[list[ShoppingList], list[ShoppingList]], data: st.DataObject
) -> None:
    replicas, deltas = history
    target = replicas[0]
    source = data.draw(st.sampled_from(replicas[1:] + deltas))
    before = {key: target.item_bytes(key) for key in target.item_keys() | source.item_keys()}
    changed = target.merge_changes(source)
    after = {key: target.item_bytes(key) for key in before}
    assert changed == {key for key in before if before[key] != after[key]}
