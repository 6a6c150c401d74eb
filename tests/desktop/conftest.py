"""Fixtures for the window: a qasync loop over pytest-qt's application, and windows over real stores."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import qasync
from pytestqt.qtbot import QtBot

from desktop.app import create_window
from desktop.main_window import MainWindow
from sync_service.home import DATABASE_URL_ENV, Home
from tests.sync_service.conftest import Result, own_home, run_shoplist, store

# Fixtures shared with the store tests: `store` (a Store on the test's home and database, for writing
# what a test starts from) and `own_home` (a home with its own PostgreSQL).
__all__ = ["own_home", "store"]

OpenWindow = Callable[..., MainWindow]


@pytest.fixture
def qt_loop(qapp: object) -> Iterator[asyncio.AbstractEventLoop]:
    """An asyncio loop (qasync) driven by the Qt event processing that pytest-qt's waits do."""
    loop = qasync.QEventLoop(qapp, already_running=True)
    asyncio.set_event_loop(loop)
    yield loop
    # Not loop.stop(): it calls QApplication.exit(), after which every nested Qt event loop (as in
    # qtbot.waitSignal) would return at once.
    asyncio.events._set_running_loop(None)
    loop._QEventLoop__is_running = False  # type: ignore[attr-defined]
    loop.close()
    asyncio.set_event_loop(None)


@pytest.fixture
def home_path(tmp_path: Path) -> Path:
    """The home the test's windows and CLI share."""
    return tmp_path / "home"


@pytest.fixture
def open_window(
    qtbot: QtBot,
    qt_loop: asyncio.AbstractEventLoop,
    postgres_database: str,
    home_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> OpenWindow:
    """Open a window on the home (its store on a fresh database of the session's server); by default
    wait until the store is open."""
    monkeypatch.setenv(DATABASE_URL_ENV, postgres_database)

    def open_one(*, wait: bool = True, home: Path | None = None) -> MainWindow:
        window = create_window(Home(home or home_path))
        assert isinstance(window, MainWindow)
        qtbot.addWidget(window)
        if wait:
            qtbot.waitUntil(lambda: window.controller.state == "ready", timeout=30_000)
        return window

    return open_one


@pytest.fixture
def cli(postgres_database: str, home_path: Path) -> Callable[..., Result]:
    """Run `shoplist --home HOME ...` as another process on the same store."""

    def run(*arguments: str) -> Result:
        return run_shoplist(home_path, *arguments, database_url=postgres_database)

    return run


def activate(qtbot: QtBot, window: MainWindow) -> None:
    """Make the window the active one, so its shortcuts take keys."""
    from PySide6.QtWidgets import QApplication

    window.activateWindow()
    window.raise_()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)


def items_of(window: MainWindow) -> dict[str, tuple[int, int]]:
    """Return what the window shows: item name -> (needed, acquired)."""
    return {item.name: (item.needed, item.acquired) for item in window.controller.items_model.items()}


def select_item(qtbot: QtBot, window: MainWindow, name: str) -> None:
    """Select the item row called `name` and give the items view the focus."""
    qtbot.waitUntil(lambda: window.controller.items_model.index_of(name).isValid())
    source = window.controller.items_model.index_of(name)
    window.items_view.setCurrentIndex(window.filter_model.mapFromSource(source))
    window.items_view.setFocus()
    qtbot.waitUntil(window.items_view.hasFocus)


def shown_json(cli: Callable[..., Result], list_name: str) -> dict[str, tuple[int, int]]:
    """Return `shoplist --json show LIST` as item name -> (needed, acquired)."""
    data = cli("--json", "show", list_name).json()
    return {item["name"]: (item["needed"], item["acquired"]) for item in data["items"]}
