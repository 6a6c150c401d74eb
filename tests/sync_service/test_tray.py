"""The tray view: state icons and tooltips, the menu's requests, and notifications (offscreen, where no
tray exists, the view still works and its signals are observed)."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QSystemTrayIcon
from pytestqt.qtbot import QtBot

from sync_service.change_summary import Notification
from sync_service.tray import SyncTray, TrayState, TrayStatus, tray_available


def _tray(qtbot: QtBot, autostart: bool = False) -> SyncTray:
    tray = SyncTray(autostart_enabled=autostart)
    tray.show()
    return tray


def _trigger(tray: SyncTray, text: str) -> None:
    (action,) = [action for action in tray._menu.actions() if action.text() == text]
    action.trigger()


def test_menu_offers_open_sync_pause_autostart_and_quit(qtbot: QtBot) -> None:
    tray = _tray(qtbot)
    assert tray.menu_texts() == [
        "Starting…",
        "Open Shoplist",
        "Sync now",
        "Pause sync",
        "Start at login",
        "Quit Shoplist sync",
    ]


def test_each_menu_entry_emits_its_request(qtbot: QtBot) -> None:
    tray = _tray(qtbot)
    with qtbot.waitSignal(tray.open_window_requested):
        _trigger(tray, "Open Shoplist")
    with qtbot.waitSignal(tray.sync_requested):
        _trigger(tray, "Sync now")
    with qtbot.waitSignal(tray.pause_toggled) as paused:
        _trigger(tray, "Pause sync")
    assert paused.args == [True]
    with qtbot.waitSignal(tray.autostart_toggled) as autostart:
        _trigger(tray, "Start at login")
    assert autostart.args == [True]
    with qtbot.waitSignal(tray.quit_requested):
        _trigger(tray, "Quit Shoplist sync")


def test_status_shows_state_and_pending_changes_in_the_tooltip(qtbot: QtBot) -> None:
    tray = _tray(qtbot)
    tray.show_status(TrayStatus(TrayState.OFFLINE, pending=3, detail="no proxy answers"))
    assert tray._icon.toolTip() == (
        "Shoplist: offline, changes are kept and sent later\n3 changes waiting to sync\nno proxy answers"
    )
    assert tray.menu_texts()[0] == "Shoplist: offline, changes are kept and sent later"


def test_paused_status_checks_the_pause_entry(qtbot: QtBot) -> None:
    tray = _tray(qtbot)
    tray.show_status(TrayStatus(TrayState.PAUSED))
    (pause,) = [action for action in tray._menu.actions() if action.text() == "Pause sync"]
    assert pause.isChecked()


def test_each_state_has_its_own_icon(qtbot: QtBot) -> None:
    tray = _tray(qtbot)
    keys = set()
    for state in (TrayState.SYNCED, TrayState.SYNCING, TrayState.OFFLINE, TrayState.ERROR):
        tray.show_status(TrayStatus(state))
        keys.add(tray._icon.icon().cacheKey())
    assert len(keys) == 4


def test_a_notification_is_shown_with_the_list_title_and_change(
    qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown_messages: list[tuple[object, ...]] = []
    monkeypatch.setattr(
        QSystemTrayIcon, "showMessage", lambda icon, *arguments: shown_messages.append((icon, *arguments))
    )
    tray = _tray(qtbot)
    with qtbot.waitSignal(tray.notification_shown) as shown:
        tray.notify(Notification("list-1", "Groceries", "Added Eggs, Milk"))
    assert shown.args == ["Groceries", "Added Eggs, Milk"]
    ((icon, title, message, kind, milliseconds),) = shown_messages
    assert icon is tray._icon
    assert (title, message) == ("Groceries", "Added Eggs, Milk")
    assert kind is QSystemTrayIcon.MessageIcon.Information
    assert milliseconds > 0


def test_offscreen_has_no_system_tray(qtbot: QtBot) -> None:
    assert tray_available() is False
