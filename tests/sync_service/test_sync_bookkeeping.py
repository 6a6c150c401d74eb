"""What the store keeps for sync: the one-service-per-home claim, the reported status, shared marks."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from sync_service.errors import ListNotFoundError
from sync_service.home import Home
from sync_service.store import SYNC_STATUS_CHANGED, Store, SyncStatus
from tests.sync_service.homes import eventually


def _second_store(database: str, tmp_path: Path) -> Store:
    home = Home(tmp_path / "home")
    home.prepare()
    return Store.attach(psycopg.connect(database, autocommit=True), home)


def test_only_one_process_can_claim_the_sync_service(
    store: Store, postgres_database: str, tmp_path: Path
) -> None:
    with _second_store(postgres_database, tmp_path) as other:
        assert store.claim_sync_service()
        assert not other.claim_sync_service()
        assert other.sync_service_running()


def test_the_claim_ends_with_the_claiming_connection(postgres_database: str, tmp_path: Path) -> None:
    first = _second_store(postgres_database, tmp_path)
    with _second_store(postgres_database, tmp_path) as watcher:
        assert not watcher.sync_service_running()
        assert first.claim_sync_service()
        assert watcher.sync_service_running()
        first.close()
        # The server drops the lock when the closed connection's backend exits, a moment after close.
        eventually(lambda: not watcher.sync_service_running(), "the claim ending with its connection")
        assert watcher.claim_sync_service()


def test_sync_status_is_none_until_reported_then_the_latest_report(store: Store) -> None:
    assert store.sync_status() is None
    store.record_sync_status(SyncStatus("syncing", 3))
    store.record_sync_status(SyncStatus("offline", 2, "no proxy answers"))
    assert store.sync_status() == SyncStatus("offline", 2, "no proxy answers")


def test_a_status_report_wakes_listeners(store: Store, postgres_database: str, tmp_path: Path) -> None:
    with _second_store(postgres_database, tmp_path) as listener:
        listener.listen()
        store.record_sync_status(SyncStatus("synced", 0))
        assert listener.wait_for_change(timeout=10) == {SYNC_STATUS_CHANGED}


def test_marking_a_list_shared_shows_in_the_summaries(store: Store) -> None:
    list_id = store.create("Groceries").id
    assert not store.lists()[0].shared
    store.mark_shared(list_id)
    assert store.lists()[0].shared


def test_marking_an_unknown_list_shared_is_an_error(store: Store) -> None:
    with pytest.raises(ListNotFoundError):
        store.mark_shared("no-such-list")
