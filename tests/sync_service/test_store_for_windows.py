"""Store calls the window relies on: restoring a deleted list, asking the sync service to sync now, the
outbox size, reading a list's parts undecoded, and the sync service answering a window's "Sync now"."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg

from crdt import ShoppingList, new_replica_id
from sync_service.home import Home
from sync_service.store import SYNC_REQUESTED, SYNC_STATUS_CHANGED, Store, SyncStatus
from sync_service.syncer import Syncer
from tests.sync_service.test_syncer import MemoryCloud


def test_a_deleted_list_restored_from_its_state_comes_back_with_its_id_and_goes_to_the_outbox(
    store: Store,
) -> None:
    list_id = store.create("Groceries").id
    store.add_item(list_id, "Eggs", 6)
    saved = store.load(list_id)
    store.delete(list_id)
    assert store.lists() == [] and store.outbox() == []
    merge = store.restore(list_id, saved)
    assert merge.created
    assert store.view(list_id).title == "Groceries"
    assert store.item(list_id, "Eggs").needed == 6
    entries = store.outbox()
    assert [entry.list_id for entry in entries] == [list_id]
    assert ShoppingList.from_bytes(entries[0].delta) == saved  # the whole state, for the cloud


def test_a_sync_request_reaches_listeners_as_its_own_marker(
    store: Store, postgres_database: str, tmp_path: Path
) -> None:
    with Store.attach(
        psycopg.connect(postgres_database, autocommit=True), Home(tmp_path / "home")
    ) as listener:
        listener.listen()
        store.request_sync()
        assert listener.wait_for_change(5.0) == {SYNC_REQUESTED}
        store.record_sync_status(SyncStatus("synced", 0))
        assert listener.wait_for_change(5.0) == {SYNC_STATUS_CHANGED}


def test_the_outbox_size_counts_local_edits_waiting(store: Store) -> None:
    assert store.outbox_size() == 0
    list_id = store.create("Groceries").id
    store.add_item(list_id, "Eggs")
    assert store.outbox_size() == 2
    store.acknowledge(entry.seq for entry in store.outbox())
    assert store.outbox_size() == 0


def test_parts_decode_to_the_same_list_as_a_load(store: Store) -> None:
    list_id = store.create("Groceries").id
    for name in ("Eggs", "Milk", "Bread"):
        store.add_item(list_id, name, 2)
    store.remove_item(list_id, "Milk")
    header, rows = store.parts(list_id)
    assert [key for key, _record in rows] == sorted(key for key, _record in rows)
    assert store.decode_parts(list_id, header, [record for _key, record in rows]) == store.load(list_id)


def test_a_windows_sync_request_makes_the_running_service_pull_every_list(
    postgres_database: str, tmp_path: Path
) -> None:
    home = Home(tmp_path / "home")
    home.prepare()
    opened: list[Store] = []

    def open_store() -> Store:
        opened.append(Store.attach(psycopg.connect(postgres_database, autocommit=True), home))
        return opened[-1]

    store = open_store()
    list_id = store.create("Groceries").id
    cloud = MemoryCloud()
    syncer = Syncer(open_store, cloud)
    requested = False

    def pulled_after_the_request(running: Syncer) -> bool:
        nonlocal requested
        if running.status is None or running.status.state != "synced" or store.outbox():
            return False
        if not requested:  # an edit the cloud holds but never published: only a pull brings it
            elsewhere = ShoppingList(new_replica_id())
            elsewhere.add_item("Bread")
            cloud.lists[list_id].merge(elsewhere)
            store.request_sync()
            requested = True
            return False
        return store.item(list_id, "Bread") is not None

    try:
        asyncio.run(asyncio.wait_for(syncer.run(until=pulled_after_the_request), 30))
    finally:
        for opened_store in opened:
            opened_store.close()
    assert requested
