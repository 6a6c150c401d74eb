"""Sync end to end with real processes: a `shoplist-server cluster`, two homes driven through the
`shoplist` CLI, and `shoplist-sync --headless` services that are killed with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from crdt import ShoppingList
from sync_service.client import CloudClient
from sync_service.home import Home
from sync_service.store import Store
from tests.cloud import RunningCluster, running_cluster
from tests.sync_service.conftest import REPO, Result, cli_environment

pytestmark = pytest.mark.timeout(300)
DEADLINE_SECONDS = 60.0


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    with running_cluster(tmp_path_factory.mktemp("cloud")) as cluster:
        yield cluster


@dataclass
class HomeUnderTest:
    """One person's computer: a home, its database, and the cloud it is told about."""

    path: Path
    database: str
    proxies: list[str]

    def environment(self) -> dict[str, str]:
        environment = cli_environment(self.database)
        environment["SHOPLIST_PROXIES"] = ",".join(self.proxies)
        return environment

    def shoplist(self, *arguments: str) -> Result:
        completed = subprocess.run(
            [sys.executable, "-m", "sync_service.cli", "--home", str(self.path), *arguments],
            capture_output=True,
            text=True,
            cwd=REPO,
            env=self.environment(),
            timeout=120,
            check=False,
        )
        return Result(completed.returncode, completed.stdout, completed.stderr)

    def start_sync_service(self) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "sync_service.tray_service", "--headless", "--home", str(self.path)]
        log = (self.path.parent / f"{self.path.name}-sync.log").open("ab")
        return subprocess.Popen(command, cwd=REPO, env=self.environment(), stdout=log, stderr=log)

    def store(self) -> Store:
        home = Home(self.path)
        home.prepare()
        return Store.attach(psycopg.connect(self.database, autocommit=True), home)


@pytest.fixture
def make_home(
    database_factory: Callable[[], str], tmp_path: Path, cloud: RunningCluster
) -> Callable[[str], HomeUnderTest]:
    def make(name: str) -> HomeUnderTest:
        return HomeUnderTest(tmp_path / name, database_factory(), list(cloud.proxies))

    return make


@pytest.fixture
def services() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Sync service processes started by a test; killed at its end."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(30)


def eventually(check: Callable[[], bool], what: str) -> None:
    """Wait until `check()` holds; fail saying `what` did not happen."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not check():
        assert time.monotonic() < deadline, f"{what} did not happen within {DEADLINE_SECONDS:g} s"
        time.sleep(0.05)


def cloud_items(proxies: list[str], list_id: str) -> dict[str, tuple[int, int]]:
    async def read() -> ShoppingList:
        client = CloudClient(proxies)
        try:
            return await client.read(list_id)
        finally:
            client.close()

    return asyncio.run(read()).items()


def _shared_list(owner: HomeUnderTest, other: HomeUnderTest, title: str) -> str:
    list_id: str = owner.shoplist("--json", "new", title).json()["id"]
    assert owner.shoplist("sync").code == 0
    code = owner.shoplist("--json", "share", title).json()["code"]
    assert other.shoplist("--json", "join", code).json()["id"] == list_id
    return list_id


def test_worked_example_edited_offline_on_two_homes_converges(
    make_home: Callable[[str], HomeUnderTest],
) -> None:
    alice, bob = make_home("alice"), make_home("bob")
    _shared_list(alice, bob, "Groceries")
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
    list_id = _shared_list(alice, bob, "Party")
    services.append(bob.start_sync_service())
    with bob.store() as bob_store:
        eventually(lambda: (bob_store.sync_status() or _never).state == "synced", "bob's service syncing")
        assert alice.shoplist("add", "Party", "Balloons", "--needed", "20").code == 0
        assert alice.shoplist("sync").code == 0
        eventually(lambda: "Balloons" in bob_store.load(list_id), "the live update reaching bob's store")


def test_sync_with_the_cloud_unreachable_fails_clearly_and_keeps_local_data(
    make_home: Callable[[str], HomeUnderTest],
) -> None:
    home = make_home("offline")
    home.proxies = ["tcp://127.0.0.1:9"]
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
        for index in range(150):
            store.add_item(list_id, f"Screw {index}", 1)
            if index == 60:
                services[-1].send_signal(signal.SIGKILL)
                services[-1].wait(30)
            if index == 100:
                services.append(home.start_sync_service())
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


class _Never:
    state = "never reported"


_never = _Never()
