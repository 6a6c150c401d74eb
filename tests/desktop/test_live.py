"""The window follows the store live: the CLI in another process, a second window, the sync service's
status; large lists; start-up failures; what the window remembers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from crdt import ShoppingList, new_replica_id
from desktop.main_window import MainWindow
from desktop.sync_display import describe_sync
from sync_service.home import DATABASE_URL_ENV, Home
from sync_service.store import Store, SyncStatus
from tests.desktop.conftest import OpenWindow, activate, items_of
from tests.sync_service.conftest import Result

Cli = Callable[..., Result]


def test_a_change_made_by_the_cli_in_another_process_appears_in_the_open_window(
    open_window: OpenWindow, cli: Cli, qtbot: QtBot
) -> None:
    cli("new", "Groceries")
    window = open_window()
    qtbot.waitUntil(lambda: window.controller.current_title == "Groceries")
    assert cli("add", "Groceries", "Eggs", "--needed", "6").code == 0
    qtbot.waitUntil(lambda: items_of(window) == {"Eggs": (6, 0)})
    assert cli("set", "Groceries", "Eggs", "--acquired", "6", "--category", "Dairy").code == 0
    qtbot.waitUntil(lambda: items_of(window) == {"Eggs": (6, 6)})
    assert window.controller.items_model.find("Eggs").category == "Dairy"
    assert cli("new", "Hardware").code == 0
    qtbot.waitUntil(lambda: window.controller.lists_model.rowCount() == 2)
    assert cli("rename", "Groceries", "Weekly shop").code == 0
    qtbot.waitUntil(lambda: window.title_label.text() == "Weekly shop")
    assert cli("delete", "Weekly shop").code == 0
    qtbot.waitUntil(lambda: window.controller.current_title == "Hardware")


def test_two_windows_on_one_home_stay_in_step(open_window: OpenWindow, store: Store, qtbot: QtBot) -> None:
    list_id = store.create("Groceries").id
    first, second = open_window(), open_window()
    for window in (first, second):
        qtbot.waitUntil(lambda window=window: window.controller.current_id == list_id)
    first.controller.quick_add("6 eggs")
    qtbot.waitUntil(lambda: items_of(second) == {"Eggs": (6, 0)})
    second.controller.toggle_got("Eggs")
    qtbot.waitUntil(lambda: items_of(first) == {"Eggs": (6, 6)})
    first.controller.undo()  # undoes the first window's own add, not the second's check-off
    qtbot.waitUntil(lambda: items_of(second) == {"Eggs": (0, 6)})
    second.controller.remove_item("Eggs")
    qtbot.waitUntil(lambda: items_of(first) == {} and items_of(second) == {})
    first.controller.new_list("Hardware")
    qtbot.waitUntil(lambda: second.controller.lists_model.rowCount() == 2)
    assert second.controller.current_id == list_id  # a list made elsewhere does not take over


def large_list(size: int) -> ShoppingList:
    """A list of `size` items in 20 aisles, as another replica would send it."""
    state = ShoppingList(new_replica_id())
    for number in range(size):
        state.add_item(f"Part {number:04d}", 1 + number % 7, category=f"Aisle {number % 20:02d}")
    return state


def test_a_large_list_is_shown_whole_and_stays_responsive(
    open_window: OpenWindow, store: Store, qtbot: QtBot
) -> None:
    list_id = store.create("Warehouse").id
    store.merge_remote(list_id, large_list(5000))
    window = open_window()
    qtbot.waitUntil(lambda: window.controller.items_model.item_count() == 5000, timeout=30_000)
    assert window.filter_model.rowCount() == 20
    window.controller.quick_add("Part 4999 3")
    qtbot.waitUntil(lambda: window.controller.items_model.find("Part 4999").needed == 1 + 4999 % 7 + 3)
    window.filter_field.setText("part 0042")
    assert window.filter_model.rowCount() == 1
    group = window.filter_model.index(0, 0)
    assert window.filter_model.index(0, 0, group).data() == "Part 0042"
    activate(qtbot, window)
    window.items_view.setCurrentIndex(window.filter_model.index(0, 0, group))
    window.items_view.setFocus()
    qtbot.keyClick(window.items_view, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: window.controller.items_model.find("Part 0042").acquired == 1)


def test_the_status_bar_shows_the_sync_service_state(
    open_window: OpenWindow, qtbot: QtBot, postgres_database: str, home_path: Path
) -> None:
    window = open_window()
    qtbot.waitUntil(lambda: window.sync_label.text().startswith("Sync service not running"))
    with Store.attach(psycopg.connect(postgres_database, autocommit=True), Home(home_path)) as service:
        assert service.claim_sync_service()
        service.record_sync_status(SyncStatus("offline", 3, "the cloud does not answer"))
        qtbot.waitUntil(lambda: window.sync_label.text() == "Offline · 3 changes waiting")
        service.record_sync_status(SyncStatus("synced", 0))
        qtbot.waitUntil(lambda: window.sync_label.text() == "Synced")
    # The service's connection is gone (as when it is killed): the next look says so.
    qtbot.waitUntil(lambda: window.sync_label.text().startswith("Sync service not running"), timeout=10_000)


@pytest.mark.parametrize(
    ("status", "running", "waiting", "state", "text"),
    [
        (None, False, 0, "stopped", "Sync service not running"),
        (None, False, 2, "stopped", "Sync service not running · 2 changes kept on this computer"),
        (None, True, 0, "syncing", "Sync service starting…"),
        (SyncStatus("synced", 0), True, 0, "synced", "Synced"),
        (SyncStatus("syncing", 1), True, 1, "syncing", "Syncing · 1 change to send"),
        (SyncStatus("offline", 4), True, 4, "offline", "Offline · 4 changes waiting"),
        (SyncStatus("paused", 0), True, 0, "paused", "Sync paused"),
        (SyncStatus("error", 0, "bad key"), True, 0, "error", "Sync error: bad key"),
    ],
)
def test_sync_state_words(
    status: SyncStatus | None, running: bool, waiting: int, state: str, text: str
) -> None:
    display = describe_sync(status, running, waiting)
    assert (display.state, display.text) == (state, text)


def test_a_store_that_cannot_open_is_a_message_in_the_window(
    open_window: OpenWindow, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DATABASE_URL_ENV, "postgresql://nobody@/shoplist?host=/nonexistent-socket-dir")
    window = open_window(wait=False)
    qtbot.waitUntil(lambda: window.controller.state == "failed", timeout=30_000)
    assert window.failure_page.isVisible()
    assert "cannot reach the store's PostgreSQL" in window.failure_label.text()
    assert window.retry_button.isVisible()


def test_empty_states_say_what_to_do(open_window: OpenWindow, qtbot: QtBot, store: Store) -> None:
    window = open_window()
    assert "No lists yet — Ctrl+N" in window.empty_label.text() and window.empty_label.isVisible()
    window.controller.new_list("Groceries")
    qtbot.waitUntil(lambda: "Nothing on “Groceries” yet" in window.empty_label.text())
    window.controller.quick_add("Milk")
    qtbot.waitUntil(lambda: window.items_view.isVisible())


def test_a_quick_add_with_no_list_yet_makes_one(open_window: OpenWindow, qtbot: QtBot, store: Store) -> None:
    window = open_window()
    window.controller.quick_add("6 eggs")
    qtbot.waitUntil(lambda: items_of(window) == {"Eggs": (6, 0)})
    assert [summary.title for summary in store.lists()] == ["Shopping"]


def test_the_window_remembers_its_geometry_and_last_list(
    open_window: OpenWindow, qtbot: QtBot, store: Store
) -> None:
    store.create("Groceries")
    hardware = store.create("Hardware").id
    window = open_window()
    row = window.controller.lists_model.row_of(hardware)
    window.lists_view.setCurrentIndex(window.controller.lists_model.index(row))
    qtbot.waitUntil(lambda: window.controller.current_title == "Hardware")
    window.resize(760, 555)  # the offscreen screen is 800 x 600
    qtbot.waitUntil(lambda: (window.width(), window.height()) == (760, 555))
    window.close()
    again = open_window()
    qtbot.waitUntil(lambda: again.controller.current_id == hardware)
    assert (again.width(), again.height()) == (760, 555)
    assert again.lists_view.currentIndex().data() == "Hardware"


def test_autocomplete_offers_this_homes_item_names(
    open_window: OpenWindow, qtbot: QtBot, store: Store
) -> None:
    first = store.create("Groceries").id
    store.add_item(first, "Greek yogurt")
    second = store.create("Party").id
    store.add_item(second, "Paper plates")
    window = open_window()
    qtbot.waitUntil(lambda: {"Greek yogurt", "Paper plates"} <= set(window.history_model.stringList()))
    window.controller.quick_add("Sparkling water 2")
    assert window.history_model.stringList()[0] == "Sparkling water"


def test_the_window_icon_and_help_come_from_the_project(open_window: OpenWindow) -> None:
    window: MainWindow = open_window()
    assert not window.windowIcon().isNull()
    assert window.actions_by_name["help"].shortcut().toString() == "F1"
