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
from tests.sync_service.conftest import Result, run_shoplist

OpenWindow = Callable[..., MainWindow]


@pytest.fixture
def qt_loop(qapp: object) -> Iterator[asyncio.AbstractEventLoop]:
    """An asyncio loop (qasync) driven by the Qt event processing that pytest-qt's waits do."""
    loop = qasync.QEventLoop(qapp, already_running=True)
    asyncio.set_event_loop(loop)
    yield loop
    asyncio.events._set_running_loop(None)
    loop.stop()
    loop.close()
    asyncio.set_event_loop(None)


@pytest.fixture
def home_path(tmp_path: Path) -> Path:
    """The home the test's windows and CLI share."""
    return tmp_path / "home"


@pytest.fixture
def open_window(
    qtbot: QtBot, qt_loop: asyncio.AbstractEventLoop, postgres_database: str, home_path: Path,
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
