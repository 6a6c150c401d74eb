"""The window says once, in the status bar, that the home's secrets are in the owner-only file because
there is no keyring; it remembers having said it, and says nothing where a keyring holds them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from pytestqt.qtbot import QtBot

from desktop.main_window import MainWindow
from desktop.settings import SECRETS_HEADLINE
from tests.desktop.conftest import OpenWindow
from tests.sync_service.fake_keyring import MemoryKeyring


def checked_notice(qtbot: QtBot, window: MainWindow) -> str:
    qtbot.waitUntil(lambda: window.controller.secrets_notice is not None, timeout=30_000)
    notice = window.controller.secrets_notice
    assert notice is not None
    return notice


def test_the_file_fallback_is_shown_once_in_the_status_bar(
    open_window: OpenWindow, qtbot: QtBot, home_path: Path
) -> None:
    window = open_window()
    notice = checked_notice(qtbot, window)
    assert notice == (
        "This home's passwords and keys are not in a keyring: they are in an owner-only file,"
        f" {home_path / 'secrets' / 'secrets.json'}, because SHOPLIST_KEYRING=file asks for it."
    )
    assert window.statusBar().currentMessage() == SECRETS_HEADLINE  # what fits beside the sync status
    assert window.statusBar().toolTip() == notice
    window.close()
    again = open_window()
    assert checked_notice(qtbot, again) == ""
    assert "keyring" not in again.statusBar().currentMessage()


@pytest.fixture
def system_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    monkeypatch.setenv("SHOPLIST_KEYRING", "auto")
    yield
    keyring.set_keyring(previous)


def test_nothing_is_shown_where_a_keyring_holds_the_secrets(
    open_window: OpenWindow, qtbot: QtBot, system_keyring: None
) -> None:
    window = open_window()
    assert checked_notice(qtbot, window) == ""
    assert "keyring" not in window.statusBar().currentMessage()
