"""The window's connection to the local store: one store thread for every call, in order, and a listener
thread that turns the store's NOTIFY into a Qt signal; the GUI thread never waits on PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import psycopg
from PySide6.QtCore import QObject, Signal

from sync_service.errors import EnvironmentProblem, ShoplistError
from sync_service.home import Home
from sync_service.store import Store, open_store

log = logging.getLogger("shoplist.desktop.store")

T = TypeVar("T")
LISTEN_POLL_SECONDS = 0.5  # how soon the listener notices that the window closed
EVERYTHING = "*"  # in `changed`: the listener reconnected, so anything may have changed
RECONNECT_SECONDS = 1.0  # how long the listener waits before it reconnects to a restarted store


class StoreSession(QObject):
    """Runs store calls on one thread in the order they were asked for, so a call made while the store
    is still starting simply waits its turn, and reports the store's change notifications.

    `changed` carries the set `Store.wait_for_change` returned: list ids, and
    `sync_service.store.SYNC_STATUS_CHANGED` when the sync service reported.
    """

    changed = Signal(object)

    def __init__(self, home: Home, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.home = home
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="shoplist-desktop-store")
        self._store: Store | None = None
        self._open_error: ShoplistError | None = None
        self._stopping = threading.Event()
        self._listener: threading.Thread | None = None

    @property
    def replica_id(self) -> str:
        """Return the home's replica id (once open)."""
        return self._store.replica_id if self._store is not None else ""

    def open(self) -> asyncio.Future[None]:
        """Open the store (starting its server if needed) on the store thread. The future fails with
        the ShoplistError that explains why it could not."""
        return self.call(lambda store: None)

    def call(self, job: Callable[[Store], T]) -> asyncio.Future[T]:
        """Run `job(store)` on the store thread after every call asked for before it; return its future.

        The future fails with a ShoplistError (the store's own, or EnvironmentProblem when the server
        stopped answering; the next call then connects again).
        """
        loop = asyncio.get_event_loop()
        return loop.run_in_executor(self._thread, self._run, job)

    def start_listening(self) -> asyncio.Future[None]:
        """Start the listener thread; the future resolves once it listens, so a read made after it
        misses no change."""
        loop = asyncio.get_event_loop()
        listening: asyncio.Future[None] = loop.create_future()
        self._listener = threading.Thread(
            target=self._listen, args=(loop, listening), name="shoplist-desktop-listen", daemon=True
        )
        self._listener.start()
        return listening

    def close(self) -> None:
        """Stop listening and close the store once the calls already asked for are done."""
        self._stopping.set()
        self._thread.submit(self._close_store)
        self._thread.shutdown(wait=False)

    # ----- on the store thread ------------------------------------------------------------------------

    def _run(self, job: Callable[[Store], T]) -> T:
        store = self._connected()
        try:
            return job(store)
        except psycopg.OperationalError as error:
            self._close_store()
            raise EnvironmentProblem(
                f"the store stopped answering ({_first_line(error)}); try again"
            ) from None
        except psycopg.Error as error:
            raise EnvironmentProblem(f"the store refused the change: {_first_line(error)}") from None

    def _connected(self) -> Store:
        if self._store is None:
            try:
                self._store = open_store(self.home)
            except ShoplistError as error:
                self._open_error = error
                raise
            self._open_error = None
        return self._store

    def _close_store(self) -> None:
        if self._store is not None:
            with contextlib.suppress(psycopg.Error):  # the server may already have gone away
                self._store.close()
            self._store = None

    # ----- on the listener thread ----------------------------------------------------------------------

    def _listen(self, loop: asyncio.AbstractEventLoop, listening: asyncio.Future[None]) -> None:
        """Wait for NOTIFY and hand each batch of changes to the GUI thread; reconnect if the store
        restarts (and report everything changed, since notifications may have been missed)."""
        first = True
        while not self._stopping.is_set():
            try:
                listener = open_store(self.home)
            except ShoplistError as error:
                log.warning("cannot watch the store for changes: %s", error)
                self._stopping.wait(RECONNECT_SECONDS)
                continue
            try:
                listener.listen()
                if first:
                    loop.call_soon_threadsafe(_resolve, listening)
                    first = False
                else:
                    loop.call_soon_threadsafe(self.changed.emit, {EVERYTHING})
                while not self._stopping.is_set():
                    changed = listener.wait_for_change(LISTEN_POLL_SECONDS)
                    if changed and not self._stopping.is_set():
                        loop.call_soon_threadsafe(self.changed.emit, changed)
            except psycopg.Error as error:
                if self._stopping.is_set():
                    return
                log.warning("lost the store's change notifications (%s); reconnecting", _first_line(error))
                self._stopping.wait(RECONNECT_SECONDS)
            finally:
                with contextlib.suppress(psycopg.Error):
                    listener.close()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
