"""The syncer shell over a real local store and an in-memory cloud: local edits reach the cloud and leave
the outbox, published changes land in the store and notify, an outage keeps everything for later, and a
refusal by the cloud shows as an error."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from crdt import ShoppingList
from sync_service import syncer as syncer_module
from sync_service.change_summary import Notification
from sync_service.client import CloudError
from sync_service.home import Home
from sync_service.store import CHANNEL, Store, SyncStatus
from sync_service.store import OutboxEntry as StoredOutboxEntry
from sync_service.syncer import CloudUnavailable, Syncer

DEADLINE_SECONDS = 30


class MemoryCloud:
    """The cloud as the client sees it: durable lists, and a feed of published changes."""

    def __init__(self) -> None:
        self.lists: dict[str, ShoppingList] = {}
        self.down = False
        self.refusing = False
        self.subscribed: set[str] = set()
        self._updates: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()

    async def write(self, list_id: str, delta: bytes) -> None:
        if self.down:
            raise CloudUnavailable("no proxy answered (tcp://127.0.0.1:1)")
        if self.refusing:
            raise CloudError("bad_request", "delta too large")
        self.publish(list_id, ShoppingList.from_bytes(delta))

    async def read(self, list_id: str) -> bytes | None:
        if self.down:
            raise CloudUnavailable("no proxy answered (tcp://127.0.0.1:1)")
        state = self.lists.get(list_id)
        return state.to_bytes() if state is not None else None

    async def subscribe(self, list_id: str) -> None:
        self.subscribed.add(list_id)

    async def next_update(self) -> tuple[str, bytes]:
        return await self._updates.get()

    def describe(self) -> str:
        return "memory cloud"

    def publish(self, list_id: str, delta: ShoppingList) -> None:
        """Merge a change (from anyone) and publish it to subscribers, as a proxy would."""
        self.lists.setdefault(list_id, ShoppingList("cloud")).merge(delta)
        if list_id in self.subscribed:
            self._updates.put_nowait((list_id, delta.to_bytes()))


@pytest.fixture
def open_store(postgres_database: str, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    home = Home(tmp_path / "home")
    home.prepare()
    opened: list[Store] = []

    def opener() -> Store:
        store = Store.attach(psycopg.connect(postgres_database, autocommit=True), home)
        opened.append(store)
        return store

    yield opener
    for store in opened:
        store.close()


def _run(syncer: Syncer, until: Callable[[Syncer], bool]) -> None:
    asyncio.run(asyncio.wait_for(syncer.run(until=until), DEADLINE_SECONDS))


def test_local_edits_reach_the_cloud_and_leave_the_outbox(open_store: Callable[[], Store]) -> None:
    store = open_store()
    list_id = store.create("Groceries").id
    store.add_item(list_id, "Eggs", 6)
    cloud = MemoryCloud()
    syncer = Syncer(open_store, cloud)
    _run(syncer, lambda s: s.status is not None and s.status.state == "synced")
    assert cloud.lists[list_id].items() == {"Eggs": (6, 0)}
    assert store.outbox() == []
    assert store.sync_status() == syncer.status


def test_an_outbox_longer_than_one_page_is_pushed_whole(
    open_store: Callable[[], Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(syncer_module, "OUTBOX_PAGE", 4)
    store = open_store()
    list_id = store.create("Groceries").id
    for index in range(9):
        store.add_item(list_id, f"Item {index}")
    cloud = MemoryCloud()
    syncer = Syncer(open_store, cloud)
    _run(syncer, lambda s: s.status is not None and s.status.state == "synced")
    assert cloud.lists[list_id].items() == {f"Item {index}": (1, 0) for index in range(9)}
    assert store.outbox() == []


def test_an_edit_made_while_running_is_pushed(open_store: Callable[[], Store]) -> None:
    store = open_store()
    list_id = store.create("Groceries").id
    cloud = MemoryCloud()
    syncer = Syncer(open_store, cloud)

    def edit_once_started(s: Syncer) -> bool:
        if s.status is not None and s.status.state == "synced" and not store.outbox():
            if list_id in cloud.lists and "Milk" in cloud.lists[list_id]:
                return True
            if not store.lists()[0].items:
                store.add_item(list_id, "Milk", 2)  # another process's edit, seen through NOTIFY
        return False

    _run(syncer, edit_once_started)
    assert cloud.lists[list_id].items() == {"Milk": (2, 0)}


def test_an_edit_committed_just_after_the_start_up_read_is_pushed(open_store: Callable[[], Store]) -> None:
    store = open_store()
    list_id = store.create("Groceries").id
    editor = open_store()
    steps: list[str] = []

    def opener() -> Store:
        opened = open_store()
        read, listen = opened.outbox, opened.listen

        def read_then_edit(after: int = 0, limit: int = 1000) -> list[StoredOutboxEntry]:
            entries = read(after, limit)
            if "read" not in steps:  # another process edits right after the syncer's first look
                steps.append("read")
                editor.add_item(list_id, "Milk", 2)
            return entries

        def recorded_listen() -> None:
            if "listen" not in steps:
                steps.append("listen")
            listen()

        opened.outbox = read_then_edit  # type: ignore[method-assign]
        opened.listen = recorded_listen  # type: ignore[method-assign]
        return opened

    cloud = MemoryCloud()
    syncer = Syncer(opener, cloud)
    _run(syncer, lambda s: list_id in cloud.lists and "Milk" in cloud.lists[list_id])
    assert steps[:2] == ["listen", "read"]  # subscribed to changes before the snapshot, never after


def test_an_edit_committed_after_a_later_numbered_one_is_still_pushed(
    open_store: Callable[[], Store], postgres_database: str
) -> None:
    store = open_store()
    slow_list, quick_list = store.create("Groceries").id, store.create("Hardware").id
    cloud = MemoryCloud()
    slow_writer = psycopg.connect(postgres_database)  # its transaction stays open until committed below
    syncer = Syncer(open_store, cloud)

    def items(list_id: str) -> dict[str, tuple[int, int]]:
        return cloud.lists.get(list_id, ShoppingList("view")).items()

    def interleave(s: Syncer) -> bool:
        started = s.status is not None and s.status.state == "synced"  # both lists pulled
        if started and not slow_writer.info.transaction_status and not items(quick_list):
            # The slow writer takes the next outbox number first; a quick edit of another list takes
            # the one after and commits (and is noticed) while the slow one is still open.
            late = ShoppingList("slow-writer").add_item("Milk", 2).to_bytes()
            slow_writer.execute("INSERT INTO outbox (list_id, delta) VALUES (%s, %s)", (slow_list, late))
            store.add_item(quick_list, "Nails", 100)
        elif items(quick_list) and slow_writer.info.transaction_status:
            slow_writer.execute("SELECT pg_notify(%s, %s)", (CHANNEL, slow_list))
            slow_writer.commit()
        return "Milk" in items(slow_list)

    try:
        _run(syncer, interleave)
    finally:
        slow_writer.close()
    assert items(quick_list) == {"Nails": (100, 0)}


def test_a_published_change_lands_in_the_store_and_notifies(open_store: Callable[[], Store]) -> None:
    store = open_store()
    list_id = store.create("Groceries").id
    store.add_item(list_id, "Milk", 2)
    cloud = MemoryCloud()
    notifications: list[Notification] = []
    syncer = Syncer(open_store, cloud, on_notification=notifications.append, clock=_fast_clock())
    other_home = ShoppingList("other-home")

    def publish_once_synced(s: Syncer) -> bool:
        if notifications:
            return True
        if s.status is not None and s.status.state == "synced" and not other_home.items():
            other_home.merge(cloud.lists[list_id])
            cloud.publish(list_id, other_home.add_item("Bread", 1))
        return False

    _run(syncer, publish_once_synced)
    assert store.load(list_id).items() == {"Milk": (2, 0), "Bread": (1, 0)}
    assert notifications == [Notification(list_id, "Groceries", "Added Bread")]


def test_an_outage_keeps_the_outbox_and_reports_offline(open_store: Callable[[], Store]) -> None:
    store = open_store()
    list_id = store.create("Groceries").id
    store.add_item(list_id, "Eggs", 6)
    cloud = MemoryCloud()
    cloud.down = True
    statuses: list[SyncStatus] = []
    syncer = Syncer(open_store, cloud, on_status=statuses.append)
    _run(syncer, lambda s: s.status is not None and s.status.state == "offline")
    assert syncer.status is not None
    assert syncer.status.pending == 2
    assert "no proxy answered" in syncer.status.detail
    assert len(store.outbox()) == 2
    assert cloud.lists == {}


def test_a_refused_push_shows_an_error_keeps_the_change_and_clears_when_accepted(
    open_store: Callable[[], Store],
) -> None:
    store = open_store()
    list_id = store.create("Groceries").id
    cloud = MemoryCloud()
    cloud.refusing = True
    statuses: list[SyncStatus] = []
    syncer = Syncer(open_store, cloud, on_status=statuses.append, clock=_fast_clock())

    def accept_after_the_error(s: Syncer) -> bool:
        if s.status is not None and s.status.state == "error":
            cloud.refusing = False
        return s.status is not None and s.status.state == "synced"

    _run(syncer, accept_after_the_error)
    (error,) = [status for status in statuses if status.state == "error"]
    assert error.detail == "the cloud refused a change: bad_request: delta too large"
    assert error.pending == 1
    assert list_id in cloud.lists
    assert store.outbox() == []


def test_after_an_outage_everything_is_caught_up(open_store: Callable[[], Store]) -> None:
    store = open_store()
    list_id = store.create("Groceries").id
    store.add_item(list_id, "Eggs", 6)
    cloud = MemoryCloud()
    cloud.down = True
    syncer = Syncer(open_store, cloud, clock=_fast_clock())

    def heal_when_offline(s: Syncer) -> bool:
        if s.status is not None and s.status.state == "offline":
            cloud.down = False
        return s.status is not None and s.status.state == "synced"

    _run(syncer, heal_when_offline)
    assert cloud.lists[list_id].items() == {"Eggs": (6, 0)}
    assert store.outbox() == []


def _fast_clock() -> Callable[[], float]:
    """A clock that runs a thousand times faster than real time, so backoffs and notification quiet
    periods pass at once while the order of events stays real."""
    import time

    start = time.monotonic()
    return lambda: start + (time.monotonic() - start) * 1000.0
