"""What a notification says about other people's edits, and how a burst of edits becomes one toast."""

from __future__ import annotations

from crdt import ShoppingList
from sync_service.change_summary import ListChange, NotificationGrouper, list_change


def _edited(before: ShoppingList, *edits: tuple[str, str, int]) -> ShoppingList:
    after = before.copy()
    for operation, name, amount in edits:
        if operation == "add":
            after.add_item(name, amount)
        elif operation == "acquire":
            after.set_item(name, acquired=amount)
        else:
            after.remove_item(name)
    return after


def test_list_change_names_added_removed_changed_and_checked_off_items() -> None:
    before = ShoppingList("home")
    for name in ("Milk", "Eggs", "Bread"):
        before.add_item(name, 2)
    after = _edited(
        before, ("add", "Butter", 1), ("remove", "Bread", 0), ("add", "Milk", 1), ("acquire", "Eggs", 2)
    )
    assert list_change(before, after) == ListChange(
        added=("Butter",), removed=("Bread",), changed=("Milk",), acquired=("Eggs",)
    )


def test_describe_is_one_line_and_shortens_long_name_lists() -> None:
    change = ListChange(added=("A", "B", "C", "D", "E"), acquired=("Eggs",))
    assert change.describe() == "added A, B, C and 2 more; checked off Eggs"


def test_a_title_change_is_reported_as_a_rename() -> None:
    before = ShoppingList("home")
    before.set_title("Groceries")
    after = before.copy()
    after.set_title("Weekend")
    assert list_change(before, after).renamed_to == "Weekend"


def test_identical_states_make_no_change() -> None:
    before = ShoppingList("home")
    before.add_item("Milk", 1)
    assert list_change(before, before.copy()).is_empty()


def test_a_burst_of_edits_to_one_list_is_one_notification() -> None:
    grouper = NotificationGrouper(quiet_seconds=2.0, max_wait_seconds=10.0)
    grouper.on_change(0.0, "list", "Groceries", ListChange(added=("Milk",)))
    grouper.on_change(1.0, "list", "Groceries", ListChange(added=("Eggs",)))
    grouper.on_change(1.5, "list", "Groceries", ListChange(changed=("Milk",)))
    assert grouper.due(3.0) == []
    (notification,) = grouper.due(3.5)
    assert notification.title == "Groceries"
    assert notification.message == "Added Milk, Eggs"
    assert grouper.due(100.0) == []


def test_a_long_burst_is_released_after_the_maximum_wait() -> None:
    grouper = NotificationGrouper(quiet_seconds=2.0, max_wait_seconds=5.0)
    for second in range(7):
        grouper.on_change(float(second), "list", "Groceries", ListChange(added=(f"Item {second}",)))
    assert grouper.next_due() == 5.0
    assert len(grouper.due(5.0)) == 1


def test_an_item_added_and_removed_within_a_burst_is_not_news() -> None:
    combined = ListChange(added=("Milk",)).then(ListChange(removed=("Milk",), added=("Eggs",)))
    assert combined == ListChange(added=("Eggs",))


def test_bursts_of_different_lists_are_separate_notifications() -> None:
    grouper = NotificationGrouper(quiet_seconds=1.0)
    grouper.on_change(0.0, "a", "Groceries", ListChange(added=("Milk",)))
    grouper.on_change(0.0, "b", "Hardware", ListChange(removed=("Nails",)))
    assert [n.message for n in grouper.due(1.0)] == ["Added Milk", "Removed Nails"]


def test_empty_changes_never_notify() -> None:
    grouper = NotificationGrouper()
    grouper.on_change(0.0, "a", "Groceries", ListChange())
    assert grouper.next_due() is None
