"""Sync end to end with real processes: a `shoplist-server cluster`, two homes driven through the
`shoplist` CLI, and `shoplist-sync --headless` services that are killed with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Callable

import pytest

from crdt import ShoppingList
from sync_service.client import CloudClient
from sync_service.share_code import list_id_of
from tests.cloud import running_cluster
from tests.sync_service.homes import HomeUnderTest, eventually, shared_list

pytestmark = pytest.mark.timeout(300)

NO_CLOUD = "tcp://127.0.0.1:9?key=rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
"""A proxy endpoint (with a pinned key) where nothing listens: the cloud is unreachable."""


def cloud_items(proxies: list[str], list_id: str) -> dict[str, tuple[int, int]]:
    async def read() -> ShoppingList:
        client = CloudClient(proxies)
        try:
            return await client.read(list_id)
        finally:
            client.close()

    return asyncio.run(read()).items()


def test_worked_example_edited_offline_on_two_homes_converges(
    make_home: Callable[[str], HomeUnderTest],
) -> None:
    alice, bob = make_home("alice"), make_home("bob")
    shared_list(alice, bob, "Groceries")
    for home, edits in (
        (alice, [("Milk", "2", "0"), ("Eggs", "6", "0")]),
        (bob, [("Bread", "1", "0"), ("Eggs", "12", "6")]),
    ):
        for name, needed, acquired in edits:
            assert (
                home.shoplist("add", "Groceries", name, "--needed", needed, "--acquired", acquired).code == 0
            )
    for home in (alice, bob, alice):
        result = home.shoplist("sync")
        assert result.code == 0, result.stderr
    expected = {"Milk": (2, 0), "Bread": (1, 0), "Eggs": (18, 6)}
    for home in (alice, bob):
        shown = home.shoplist("--json", "show", "Groceries").json()["items"]
        assert {item["name"]: (item["needed"], item["acquired"]) for item in shown} == expected


def test_a_live_change_reaches_the_other_home_without_a_pull(
    make_home: Callable[[str], HomeUnderTest], services: list[subprocess.Popen[bytes]]
) -> None:
    alice, bob = make_home("alice"), make_home("bob")
    list_id = shared_list(alice, bob, "Party")
    services.append(bob.start_sync_service())
    with bob.store() as bob_store:
        eventually(lambda: bob.service_state(bob_store) == "synced", "bob's service syncing")
        pulls_before = bob.sync_log.read_text().count(f"pulling list {list_id}")
        assert pulls_before >= 1  # the start-up pull, which the log shows as it will show any other
        assert alice.shoplist("add", "Party", "Balloons", "--needed", "20").code == 0
        assert alice.shoplist("sync").code == 0
        eventually(lambda: "Balloons" in bob_store.load(list_id), "the live update reaching bob's store")
    log = bob.sync_log.read_text()
    assert log.count(f"pulling list {list_id}") == pulls_before
    assert f"published change to list {list_id}" in log


def test_pull_fetches_the_clouds_copy_of_one_list(make_home: Callable[[str], HomeUnderTest]) -> None:
    alice, bob = make_home("alice"), make_home("bob")
    list_id = shared_list(alice, bob, "Hardware")
    assert alice.shoplist("add", "Hardware", "Nails", "--needed", "100").code == 0
    assert alice.shoplist("sync").code == 0
    pulled = bob.shoplist("--json", "pull", "Hardware").json()
    assert pulled == {"id": list_id, "title": "Hardware", "items": 1}
    shown = bob.shoplist("--json", "show", "Hardware").json()["items"]
    assert [(item["name"], item["needed"], item["acquired"]) for item in shown] == [("Nails", 100, 0)]


def test_sync_with_the_cloud_unreachable_fails_clearly_and_keeps_local_data(
    make_home: Callable[[str], HomeUnderTest],
) -> None:
    home = make_home("offline")
    home.proxies = [NO_CLOUD]
    home.shoplist("new", "Groceries")
    home.shoplist("add", "Groceries", "Eggs", "--needed", "6")
    result = home.shoplist("sync", "--timeout", "60")
    assert result.code == 1
    assert "unreachable" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    shown = home.shoplist("--json", "show", "Groceries").json()["items"]
    assert [(item["name"], item["needed"]) for item in shown] == [("Eggs", 6)]
    assert home.shoplist("--json", "status").json()["pending"] == 2


def test_sync_service_killed_mid_push_loses_nothing_and_duplicates_nothing(
    make_home: Callable[[str], HomeUnderTest], services: list[subprocess.Popen[bytes]]
) -> None:
    home = make_home("crashy")
    with home.store() as store:
        list_id = store.create("Hardware").id
        services.append(home.start_sync_service())
        eventually(lambda: home.service_state(store) == "synced", "the service starting")
        killed_at = None
        for index in range(150):
            store.add_item(list_id, f"Screw {index}", 1)
            # Kill the service while it pushes: once the cloud holds some of the edits, at once.
            if killed_at is None and index >= 20 and cloud_items(home.proxies, list_id):
                services[-1].send_signal(signal.SIGKILL)
                services[-1].wait(30)
                killed_at = index
                assert store.outbox(), "the kill left nothing unacknowledged: it was not mid-push"
            if killed_at is not None and len(services) == 1 and index in (killed_at + 30, 149):
                services.append(home.start_sync_service())
        assert killed_at is not None and len(services) == 2, "the service never pushed during the edits"
        eventually(lambda: not store.outbox(), "the outbox emptying")
    items = cloud_items(home.proxies, list_id)
    assert items == {f"Screw {index}": (1, 0) for index in range(150)}


def test_a_proxy_killed_mid_sync_does_not_stop_sync(
    make_home: Callable[[str], HomeUnderTest], tmp_path_factory: pytest.TempPathFactory
) -> None:
    with running_cluster(tmp_path_factory.mktemp("own-cloud")) as cluster:
        home = make_home("failover")
        home.proxies = list(cluster.proxies)
        with home.store() as store:
            list_id = store.create("Camping").id
            service = home.start_sync_service()
            try:
                eventually(lambda: home.service_state(store) == "synced", "the service syncing via proxy 1")
                for index in range(40):
                    store.add_item(list_id, f"Tent peg {index}", 1)
                os.kill(cluster.proxy_pids()[0], signal.SIGKILL)
                for index in range(40, 80):
                    store.add_item(list_id, f"Tent peg {index}", 1)
                eventually(lambda: not store.outbox(), "the outbox emptying through the other proxy")
            finally:
                service.kill()
                service.wait(30)
        assert cloud_items(cluster.proxies[1:], list_id) == {
            f"Tent peg {index}": (1, 0) for index in range(80)
        }


def test_reshare_leaves_former_members_an_empty_list_and_new_code_holders_the_items(
    make_home: Callable[[str], HomeUnderTest],
) -> None:
    alice, bob, carol = make_home("alice"), make_home("bob"), make_home("carol")
    old_id = shared_list(alice, bob, "Groceries")
    for name, needed in (("Milk", "2"), ("Eggs", "6")):
        assert alice.shoplist("add", "Groceries", name, "--needed", needed).code == 0
    assert alice.shoplist("sync").code == 0
    assert bob.shoplist("--json", "pull", "Groceries").json()["items"] == 2

    result = alice.shoplist("--json", "reshare", "Groceries")
    assert result.code == 0, result.stderr
    reshared = result.json()
    new_id = reshared["id"]
    assert reshared["old_id"] == old_id and new_id != old_id
    assert list_id_of(reshared["code"]) == new_id
    assert alice.shoplist("--json", "lists").json() == [{"id": new_id, "title": "Groceries", "items": 2}]

    assert cloud_items(alice.proxies, old_id) == {}
    assert cloud_items(alice.proxies, new_id) == {"Milk": (2, 0), "Eggs": (6, 0)}
    assert bob.shoplist("--json", "pull", "Groceries").json() == {
        "id": old_id,
        "title": "Groceries",
        "items": 0,
    }
    assert carol.shoplist("--json", "join", reshared["code"]).json()["items"] == 2

    # What the former member writes to the old list stays there.
    assert bob.shoplist("add", "Groceries", "Graffiti").code == 0
    assert bob.shoplist("sync").code == 0
    assert "Graffiti" not in cloud_items(alice.proxies, new_id)
    assert carol.shoplist("add", "Groceries", "Bread").code == 0
    assert carol.shoplist("sync").code == 0
    assert alice.shoplist("sync").code == 0
    shown = alice.shoplist("--json", "show", "Groceries").json()["items"]
    assert sorted(item["name"] for item in shown) == ["Bread", "Eggs", "Milk"]


def test_reshare_with_the_cloud_unreachable_changes_nothing(
    make_home: Callable[[str], HomeUnderTest],
) -> None:
    home = make_home("offline")
    home.proxies = ["tcp://127.0.0.1:9?key=rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"]  # nobody serves it
    created = home.shoplist("--json", "new", "Groceries").json()
    home.shoplist("add", "Groceries", "Eggs")
    result = home.shoplist("reshare", "Groceries")
    assert result.code == 1
    assert "unreachable" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert home.shoplist("--json", "lists").json() == [
        {"id": created["id"], "title": "Groceries", "items": 1}
    ]


def test_reshare_while_the_owners_sync_service_runs_leaves_one_list_with_every_item(
    make_home: Callable[[str], HomeUnderTest], services: list[subprocess.Popen[bytes]]
) -> None:
    alice, bob = make_home("alice"), make_home("bob")
    old_id = shared_list(alice, bob, "Groceries")
    assert alice.shoplist("add", "Groceries", "Milk", "--needed", "2").code == 0
    services.append(alice.start_sync_service())
    with alice.store() as store:
        eventually(lambda: alice.service_state(store) == "synced" and not store.outbox(), "alice synced")
        result = alice.shoplist("--json", "reshare", "Groceries")
        assert result.code == 0, result.stderr
        new_id = result.json()["id"]
        # The service follows the new list, pushes what the move queued, and brings nothing of the old one
        # back (its clearing comes back from the cloud after the old list was deleted here).
        eventually(
            lambda: alice.service_state(store) == "synced" and not store.outbox(), "alice synced again"
        )
        assert [(summary.id, summary.items) for summary in store.lists()] == [(new_id, 1)]
    assert cloud_items(alice.proxies, new_id) == {"Milk": (2, 0)}
    assert cloud_items(alice.proxies, old_id) == {}
    assert bob.shoplist("--json", "pull", "Groceries").json()["items"] == 0
