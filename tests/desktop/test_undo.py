"""Undo and redo of every edit, each a new CRDT operation through the store (never a rewrite of history)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pytestqt.qtbot import QtBot

from desktop.main_window import MainWindow
from sync_service.store import Store
from tests.desktop.conftest import OpenWindow, items_of, shown_json
from tests.sync_service.conftest import Result

Cli = Callable[..., Result]


@pytest.fixture
def window(open_window: OpenWindow, store: Store, qtbot: QtBot) -> MainWindow:
    """A window on Groceries: Milk 2 (category Dairy, unit l), Bread 1."""
    list_id = store.create("Groceries").id
    store.add_item(list_id, "Milk", 2, category="Dairy", unit="l")
    store.add_item(list_id, "Bread")
    opened = open_window()
    qtbot.waitUntil(lambda: set(items_of(opened)) == {"Milk", "Bread"})
    return opened


def settled(window: MainWindow) -> bool:
    """Return whether the window has run every action asked for."""
    controller = window.controller
    return not controller._pending and not controller._draining


def undo(qtbot: QtBot, window: MainWindow) -> None:
    window.controller.undo()
    qtbot.waitUntil(lambda: settled(window))


def redo(qtbot: QtBot, window: MainWindow) -> None:
    window.controller.redo()
    qtbot.waitUntil(lambda: settled(window))


def test_undo_of_an_add_of_a_new_item_removes_it_and_redo_adds_it_again(
    window: MainWindow, qtbot: QtBot, store: Store
) -> None:
    window.controller.quick_add("6 eggs")
    qtbot.waitUntil(lambda: items_of(window).get("Eggs") == (6, 0))
    undo(qtbot, window)
    qtbot.waitUntil(lambda: "Eggs" not in items_of(window))
    assert store.item(window.controller.current_id, "Eggs") is None
    redo(qtbot, window)
    qtbot.waitUntil(lambda: items_of(window).get("Eggs") == (6, 0))


def test_undo_of_an_add_takes_back_only_what_this_window_added(
    window: MainWindow, qtbot: QtBot, store: Store
) -> None:
    list_id = window.controller.current_id
    window.controller.quick_add("Milk 3")
    qtbot.waitUntil(lambda: items_of(window)["Milk"] == (5, 0))
    store.add_item(list_id, "Milk", 4)  # another edit lands after the window's add
    qtbot.waitUntil(lambda: items_of(window)["Milk"] == (9, 0))
    undo(qtbot, window)
    qtbot.waitUntil(lambda: items_of(window)["Milk"] == (6, 0))  # the later 4 survive
    redo(qtbot, window)
    qtbot.waitUntil(lambda: items_of(window)["Milk"] == (9, 0))


def test_undo_of_an_add_after_the_item_was_added_elsewhere_keeps_it(
    window: MainWindow, qtbot: QtBot, store: Store
) -> None:
    list_id = window.controller.current_id
    window.controller.quick_add("Eggs 6")
    qtbot.waitUntil(lambda: "Eggs" in items_of(window))
    store.add_item(list_id, "Eggs", 12)
    qtbot.waitUntil(lambda: items_of(window)["Eggs"] == (18, 0))
    undo(qtbot, window)
    qtbot.waitUntil(lambda: items_of(window).get("Eggs") == (12, 0))


def test_undo_and_redo_of_an_in_place_quantity_and_detail_change(
    window: MainWindow, qtbot: QtBot, store: Store
) -> None:
    list_id = window.controller.current_id
    window.controller.change_item("Milk", {"needed": 5})
    window.controller.change_item("Milk", {"unit": "bottle", "note": "oat"})
    window.controller.change_item("Milk", {"category": "Drinks"})
    qtbot.waitUntil(
        lambda: settled(window) and window.controller.items_model.find("Milk").category == "Drinks"
    )
    milk = store.item(list_id, "Milk")
    assert (milk.needed, milk.unit, milk.note, milk.category) == (5, "bottle", "oat", "Drinks")
    undo(qtbot, window)
    assert store.item(list_id, "Milk").category == "Dairy"
    undo(qtbot, window)
    milk = store.item(list_id, "Milk")
    assert (milk.unit, milk.note) == ("l", "")
    undo(qtbot, window)
    assert store.item(list_id, "Milk").needed == 2
    qtbot.waitUntil(lambda: items_of(window)["Milk"] == (2, 0))
    redo(qtbot, window)
    redo(qtbot, window)
    milk = store.item(list_id, "Milk")
    assert (milk.needed, milk.unit, milk.note, milk.category) == (5, "bottle", "oat", "Dairy")


def test_editing_a_cell_asks_for_the_change_through_the_model(
    window: MainWindow, qtbot: QtBot, store: Store
) -> None:
    model = window.controller.items_model
    index = model.index_of("Bread").siblingAtColumn(1)
    assert model.setData(index, 3)
    qtbot.waitUntil(lambda: items_of(window)["Bread"] == (3, 0))
    note = model.index_of("Bread").siblingAtColumn(5)
    assert model.setData(note, "  wholemeal ")
    qtbot.waitUntil(lambda: model.find("Bread").note == "wholemeal")


def test_undo_and_redo_of_a_check_off(window: MainWindow, qtbot: QtBot, cli: Cli) -> None:
    window.controller.toggle_got("Milk")
    qtbot.waitUntil(lambda: items_of(window)["Milk"] == (2, 2))
    undo(qtbot, window)
    qtbot.waitUntil(lambda: items_of(window)["Milk"] == (2, 0))
    redo(qtbot, window)
    qtbot.waitUntil(lambda: items_of(window)["Milk"] == (2, 2))
    assert shown_json(cli, "Groceries")["Milk"] == (2, 2)


def test_undo_of_a_remove_brings_the_item_back_with_its_details(
    window: MainWindow, qtbot: QtBot, store: Store
) -> None:
    list_id = window.controller.current_id
    window.controller.remove_item("Milk")
    qtbot.waitUntil(lambda: "Milk" not in items_of(window))
    undo(qtbot, window)
    qtbot.waitUntil(lambda: items_of(window).get("Milk") == (2, 0))
    milk = store.item(list_id, "Milk")
    assert (milk.category, milk.unit) == ("Dairy", "l")
    redo(qtbot, window)
    qtbot.waitUntil(lambda: "Milk" not in items_of(window))


def test_undo_and_redo_of_a_rename(window: MainWindow, qtbot: QtBot, cli: Cli) -> None:
    window.controller.rename_list("Weekly shop")
    qtbot.waitUntil(lambda: window.controller.current_title == "Weekly shop")
    undo(qtbot, window)
    qtbot.waitUntil(lambda: window.controller.current_title == "Groceries")
    redo(qtbot, window)
    qtbot.waitUntil(lambda: window.controller.current_title == "Weekly shop")
    assert [entry["title"] for entry in cli("--json", "lists").json()] == ["Weekly shop"]


def test_undo_of_a_new_list_forgets_it_and_redo_brings_the_same_list_back(
    window: MainWindow, qtbot: QtBot, store: Store
) -> None:
    groceries = window.controller.current_id
    window.controller.new_list("Pharmacy")
    qtbot.waitUntil(lambda: window.controller.current_title == "Pharmacy")
    pharmacy = window.controller.current_id
    window.controller.quick_add("Plasters")
    qtbot.waitUntil(lambda: "Plasters" in items_of(window))
    undo(qtbot, window)  # the add
    undo(qtbot, window)  # the new list
    qtbot.waitUntil(lambda: window.controller.current_id == groceries)
    assert [summary.title for summary in store.lists()] == ["Groceries"]
    redo(qtbot, window)
    qtbot.waitUntil(lambda: window.controller.current_id == pharmacy)
    redo(qtbot, window)
    qtbot.waitUntil(lambda: "Plasters" in items_of(window))


def test_undo_of_a_delete_restores_the_list_and_its_unsent_changes(
    window: MainWindow, qtbot: QtBot, store: Store
) -> None:
    list_id = window.controller.current_id
    window.controller.delete_list()
    qtbot.waitUntil(lambda: window.controller.current_id == "")
    assert store.lists() == [] and store.outbox() == []
    undo(qtbot, window)
    qtbot.waitUntil(lambda: window.controller.current_id == list_id)
    qtbot.waitUntil(lambda: set(items_of(window)) == {"Milk", "Bread"})
    assert [entry.list_id for entry in store.outbox()] == [list_id]  # the state goes to the cloud again
    redo(qtbot, window)
    qtbot.waitUntil(lambda: window.controller.current_id == "")


def test_undo_of_an_edit_in_another_list_shows_that_list(window: MainWindow, qtbot: QtBot) -> None:
    groceries = window.controller.current_id
    window.controller.quick_add("Eggs")
    window.controller.new_list("Hardware")
    qtbot.waitUntil(lambda: settled(window) and window.controller.current_title == "Hardware")
    undo(qtbot, window)
    undo(qtbot, window)
    qtbot.waitUntil(lambda: window.controller.current_id == groceries and "Eggs" not in items_of(window))


def test_a_failed_edit_says_why_and_leaves_nothing_to_undo(window: MainWindow, qtbot: QtBot) -> None:
    window.controller.quick_add("x" * 300)  # longer than a name may be
    qtbot.waitUntil(lambda: "characters" in window.statusBar().currentMessage())
    assert not window.controller.undo_stack.canUndo()
