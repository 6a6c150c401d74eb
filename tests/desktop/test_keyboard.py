"""The keyboard contract, key by key, against a real store; each result is checked through the CLI too."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from desktop.shortcuts import CONTRACT
from sync_service.home import Home
from sync_service.share_code import share_code
from sync_service.store import SYNC_REQUESTED, Store
from tests.desktop.conftest import OpenWindow, activate, items_of, select_item, shown_json
from tests.sync_service.conftest import Result

CTRL = Qt.KeyboardModifier.ControlModifier
CTRL_SHIFT = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
Cli = Callable[..., Result]


@pytest.fixture
def groceries(open_window: OpenWindow, store: Store, qtbot: QtBot):  # type: ignore[no-untyped-def]
    """A window showing the list Groceries (Milk 2, Bread 1), active and ready for keys."""
    list_id = store.create("Groceries").id
    store.add_item(list_id, "Milk", 2)
    store.add_item(list_id, "Bread")
    window = open_window()
    qtbot.waitUntil(lambda: set(items_of(window)) == {"Milk", "Bread"})
    activate(qtbot, window)
    return window


def type_into_dialog(qtbot: QtBot, dialog, text: str) -> None:  # type: ignore[no-untyped-def]
    """Type `text` and Enter into `dialog` once it has the focus, as a person would."""

    def focused() -> bool:
        widget = QApplication.focusWidget()
        return dialog.isVisible() and widget is not None and widget.window() is dialog

    qtbot.waitUntil(focused)
    qtbot.keyClicks(QApplication.focusWidget(), text)
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Return)


def add_by_keys(qtbot: QtBot, window, text: str) -> None:  # type: ignore[no-untyped-def]
    activate(qtbot, window)  # the offscreen platform does not give it back when a dialog closes
    qtbot.keyClick(window, Qt.Key.Key_L, CTRL)
    qtbot.waitUntil(window.quick_add.hasFocus)
    qtbot.keyClicks(window.quick_add, text)
    qtbot.keyClick(window.quick_add, Qt.Key.Key_Return)


def test_ctrl_n_opens_the_new_list_dialog_and_enter_makes_the_list_current(
    groceries, qtbot: QtBot, cli: Cli
) -> None:
    window = groceries
    qtbot.keyClick(window.items_view, Qt.Key.Key_N, CTRL)
    qtbot.waitUntil(lambda: window.new_list_dialog is not None and window.new_list_dialog.isVisible())
    type_into_dialog(qtbot, window.new_list_dialog, "Hardware store")
    qtbot.waitUntil(lambda: window.controller.current_title == "Hardware store")
    assert {entry["title"] for entry in cli("--json", "lists").json()} == {"Groceries", "Hardware store"}
    selected = window.lists_view.currentIndex().data()
    assert selected == "Hardware store"
    assert window.empty_label.isVisible() and "Nothing on" in window.empty_label.text()


def test_ctrl_l_focuses_quick_add_enter_adds_and_the_field_clears(groceries, qtbot: QtBot, cli: Cli) -> None:
    window = groceries
    window.items_view.setFocus()
    add_by_keys(qtbot, window, "6 eggs")
    assert window.quick_add.text() == ""
    qtbot.waitUntil(lambda: items_of(window).get("Eggs") == (6, 0))
    add_by_keys(qtbot, window, "2 kg flour")
    qtbot.waitUntil(lambda: items_of(window).get("Flour") == (2, 0))
    assert window.controller.items_model.find("Flour").unit == "kg"
    assert shown_json(cli, "Groceries") == {"Milk": (2, 0), "Bread": (1, 0), "Eggs": (6, 0), "Flour": (2, 0)}


def test_quick_add_of_a_known_item_adds_to_it_under_its_own_name(groceries, qtbot: QtBot, cli: Cli) -> None:
    window = groceries
    add_by_keys(qtbot, window, "milk 3")
    qtbot.waitUntil(lambda: items_of(window).get("Milk") == (5, 0))
    assert shown_json(cli, "Groceries")["Milk"] == (5, 0)


def test_enter_adds_even_while_the_autocomplete_popup_is_open(groceries, qtbot: QtBot, cli: Cli) -> None:
    window = groceries
    qtbot.waitUntil(lambda: "Milk" in window.history_model.stringList())
    qtbot.keyClick(window, Qt.Key.Key_L, CTRL)
    qtbot.keyClicks(window.quick_add, "Mi")
    qtbot.waitUntil(window.completer.popup().isVisible)
    qtbot.keyClick(window.completer.popup(), Qt.Key.Key_Return)
    assert window.quick_add.text() == ""
    qtbot.waitUntil(lambda: items_of(window).get("Mi") == (1, 0))
    assert not window.completer.popup().isVisible()
    # With a suggestion highlighted, Enter adds the suggestion.
    qtbot.keyClicks(window.quick_add, "Bre")
    qtbot.waitUntil(window.completer.popup().isVisible)
    qtbot.keyClick(window.completer.popup(), Qt.Key.Key_Down)
    qtbot.keyClick(window.completer.popup(), Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: items_of(window).get("Bread") == (2, 0))
    assert window.quick_add.text() == ""
    assert shown_json(cli, "Groceries")["Bread"] == (2, 0)


def test_ctrl_f_filters_the_items_shown(groceries, qtbot: QtBot) -> None:
    window = groceries
    qtbot.keyClick(window.items_view, Qt.Key.Key_F, CTRL)
    qtbot.waitUntil(window.filter_field.hasFocus)
    qtbot.keyClicks(window.filter_field, "mil")
    group = window.filter_model.index(0, 0)
    assert window.filter_model.rowCount() == 1 and window.filter_model.rowCount(group) == 1
    assert window.filter_model.index(0, 0, group).data() == "Milk"
    qtbot.keyClicks(window.filter_field, "zzz")
    assert "No items match" in window.empty_label.text() and window.empty_label.isVisible()


def test_space_toggles_acquired_on_the_selected_item(groceries, qtbot: QtBot, cli: Cli) -> None:
    window = groceries
    select_item(qtbot, window, "Milk")
    qtbot.keyClick(window.items_view, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: items_of(window)["Milk"] == (2, 2))
    assert shown_json(cli, "Groceries")["Milk"] == (2, 2)
    select_item(qtbot, window, "Milk")
    qtbot.keyClick(window.items_view, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: items_of(window)["Milk"] == (2, 0))


def test_delete_removes_the_selected_item(groceries, qtbot: QtBot, cli: Cli) -> None:
    window = groceries
    select_item(qtbot, window, "Bread")
    qtbot.keyClick(window.items_view, Qt.Key.Key_Delete)
    qtbot.waitUntil(lambda: "Bread" not in items_of(window))
    assert shown_json(cli, "Groceries") == {"Milk": (2, 0)}
    assert window.selected_item_name() == "Milk"  # the selection moved to the row left


def test_ctrl_z_in_the_quick_add_field_undoes_the_last_list_edit(groceries, qtbot: QtBot, cli: Cli) -> None:
    window = groceries
    add_by_keys(qtbot, window, "6 eggs")
    qtbot.waitUntil(lambda: "Eggs" in items_of(window))
    qtbot.keyClicks(window.quick_add, "half typed")
    qtbot.keyClick(window.quick_add, Qt.Key.Key_Z, CTRL)
    qtbot.waitUntil(lambda: "Eggs" not in items_of(window))
    assert window.quick_add.text() == "half typed"  # the field's own undo did not take the key
    assert "Eggs" not in shown_json(cli, "Groceries")
    qtbot.keyClick(window.quick_add, Qt.Key.Key_Z, CTRL_SHIFT)
    qtbot.waitUntil(lambda: items_of(window).get("Eggs") == (6, 0))
    assert shown_json(cli, "Groceries")["Eggs"] == (6, 0)


def test_ctrl_z_in_the_filter_field_and_items_view_undoes_too(groceries, qtbot: QtBot) -> None:
    window = groceries
    select_item(qtbot, window, "Bread")
    qtbot.keyClick(window.items_view, Qt.Key.Key_Delete)
    qtbot.waitUntil(lambda: "Bread" not in items_of(window))
    qtbot.keyClick(window.items_view, Qt.Key.Key_F, CTRL)
    qtbot.keyClick(window.filter_field, Qt.Key.Key_Z, CTRL)
    qtbot.waitUntil(lambda: "Bread" in items_of(window))
    window.items_view.setFocus()
    qtbot.keyClick(window.items_view, Qt.Key.Key_Y, CTRL)
    qtbot.waitUntil(lambda: "Bread" not in items_of(window))


def test_ctrl_shift_s_shows_the_share_code_and_marks_the_list_shared(
    groceries, qtbot: QtBot, cli: Cli
) -> None:
    window = groceries
    qtbot.keyClick(window.items_view, Qt.Key.Key_S, CTRL_SHIFT)
    qtbot.waitUntil(lambda: window.share_dialog is not None and window.share_dialog.isVisible())
    list_id = window.controller.current_id
    assert window.share_dialog.code_field.text() == share_code(list_id)
    window.share_dialog.copy_button.click()
    assert QApplication.clipboard().text() == share_code(list_id)
    qtbot.waitUntil(lambda: window.controller.lists_model.summary(list_id).shared)
    window.share_dialog.join_field.setText("SL-NOT-A-CODE")
    window.share_dialog.join_button.click()
    assert window.share_dialog.join_status.text()  # a mistyped code is explained, nothing is fetched


def test_a_new_code_with_the_cloud_unreachable_says_so_and_keeps_the_list_and_its_code(
    groceries, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPLIST_PROXIES", "tcp://127.0.0.1:9?key=rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7")
    window = groceries
    qtbot.keyClick(window.items_view, Qt.Key.Key_S, CTRL_SHIFT)
    qtbot.waitUntil(lambda: window.share_dialog is not None and window.share_dialog.isVisible())
    list_id = window.controller.current_id
    window.share_dialog.reshare_button.click()
    qtbot.waitUntil(lambda: "unreachable" in window.share_dialog.share_hint.text(), timeout=30_000)
    assert window.share_dialog.reshare_button.isEnabled()
    assert window.share_dialog.code_field.text() == share_code(list_id)
    assert window.controller.current_id == list_id


def test_f5_asks_the_running_sync_service_to_sync_now(
    groceries, qtbot: QtBot, postgres_database: str, home_path: Path
) -> None:
    window = groceries
    qtbot.keyClick(window.items_view, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: "not running" in window.statusBar().currentMessage())
    with Store.attach(psycopg.connect(postgres_database, autocommit=True), Home(home_path)) as service:
        assert service.claim_sync_service()
        service.listen()
        qtbot.keyClick(window.items_view, Qt.Key.Key_F5)
        qtbot.waitUntil(lambda: window.statusBar().currentMessage() == "Syncing now…")
        assert SYNC_REQUESTED in service.wait_for_change(5.0)


def test_f1_lists_the_keyboard_contract(groceries, qtbot: QtBot) -> None:
    window = groceries
    qtbot.keyClick(window.quick_add, Qt.Key.Key_F1)
    qtbot.waitUntil(lambda: window.help_dialog is not None and window.help_dialog.isVisible())
    text = window.help_dialog.findChild(type(window.title_label)).text()
    for shortcut in CONTRACT:
        assert shortcut.keys[0] in text


def test_keys_pressed_while_the_store_starts_are_queued_not_dropped(
    qtbot: QtBot, qt_loop, own_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from desktop.app import create_window
    from sync_service.home import DATABASE_URL_ENV
    from tests.sync_service.conftest import run_shoplist

    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    window = create_window(Home(own_home))  # its own PostgreSQL, started now
    qtbot.addWidget(window)
    activate(qtbot, window)
    assert window.controller.state == "opening"
    assert window.empty_label.text().startswith("Opening")
    qtbot.keyClick(window, Qt.Key.Key_N, CTRL)
    qtbot.waitUntil(lambda: window.new_list_dialog is not None)
    type_into_dialog(qtbot, window.new_list_dialog, "Groceries")
    add_by_keys(qtbot, window, "6 eggs")
    add_by_keys(qtbot, window, "Milk 2")
    qtbot.keyClick(window.quick_add, Qt.Key.Key_Z, CTRL)
    add_by_keys(qtbot, window, "Bread")
    qtbot.waitUntil(lambda: window.controller.state == "ready", timeout=60_000)
    qtbot.waitUntil(lambda: items_of(window) == {"Eggs": (6, 0), "Bread": (1, 0)}, timeout=10_000)
    assert window.controller.current_title == "Groceries"
    shown = run_shoplist(own_home, "--json", "show", "Groceries").json()
    assert {item["name"]: item["needed"] for item in shown["items"]} == {"Eggs": 6, "Bread": 1}


def test_every_control_has_an_accessible_name(groceries) -> None:
    from PySide6.QtWidgets import QAbstractButton, QAbstractItemView, QLineEdit

    window = groceries
    assert window.quick_add.accessibleName() == "Quick add"
    assert window.items_view.accessibleName() == "Items"
    assert window.lists_view.accessibleName() == "Lists"
    assert window.filter_field.accessibleName() == "Filter"
    controls = [
        widget
        for kind in (QLineEdit, QAbstractButton, QAbstractItemView)
        for widget in window.findChildren(kind)
        if widget.isVisibleTo(window)
    ]
    unnamed = [widget for widget in controls if not widget.accessibleName()]
    assert not unnamed, unnamed
