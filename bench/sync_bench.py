"""Sync benchmark on a local cluster: edit -> visible in another home's store, catch-up after offline
edits, and the idle cost of `shoplist-sync` (headless and with Qt) following 100 lists."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psutil
from local_cluster import local_cluster

from crdt import ShoppingList
from sync_service import postgres_server
from sync_service.client import CloudClient
from sync_service.home import Home
from sync_service.store import Store, open_store

PYTHON = sys.executable


def percentile(samples: list[float], fraction: float) -> float:
    """Return the sample at `fraction` of the sorted samples (nearest rank)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class BenchHome:
    """A home with its own store server, and its sync service when started."""

    def __init__(self, path: Path, proxies: list[str]) -> None:
        self.home = Home(path)
        self.environment = {
            **{key: value for key, value in os.environ.items() if not key.startswith("SHOPLIST_")},
            "SHOPLIST_PROXIES": ",".join(proxies),
            "SHOPLIST_KEYRING": "file",  # a temporary home: never the desktop's keyring
        }
        self.service: subprocess.Popen[bytes] | None = None

    def store(self) -> Store:
        return open_store(self.home)

    def start_service(self, *, headless: bool = True) -> psutil.Process:
        command = [PYTHON, "-m", "sync_service.tray_service", "--home", str(self.home.path)]
        environment = dict(self.environment)
        if headless:
            command.append("--headless")
        else:
            environment["QT_QPA_PLATFORM"] = "offscreen"
        log = (self.home.path.parent / f"{self.home.path.name}-sync.log").open("ab")
        self.service = subprocess.Popen(command, env=environment, stdout=log, stderr=log)
        return psutil.Process(self.service.pid)

    def stop_service(self) -> None:
        if self.service is not None and self.service.poll() is None:
            self.service.send_signal(signal.SIGTERM)
            self.service.wait(60)
        self.service = None

    def close(self) -> None:
        self.stop_service()
        postgres_server.stop(self.home)


def wait_until(check: Callable[[], bool], limit: float = 120.0) -> None:
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("the benchmark's condition was not reached")
        time.sleep(0.002)


def outbox_empty(store: Store) -> bool:
    """Return whether the cloud acknowledged every local change (one cheap query: benchmarks poll it)."""
    return not store.outbox(limit=1)


def synced(store: Store, since: datetime | None = None) -> bool:
    """Return whether the home's service reports everything synced (with a sync at or after `since`)."""
    status = store.sync_status()
    if status is None or status.state != "synced" or not outbox_empty(store):
        return False
    return since is None or (status.last_sync is not None and status.last_sync >= since)


def edit_to_other_home(alice: BenchHome, bob: BenchHome, edits: int) -> list[float]:
    """Return the latencies (ms) from a local commit in one home to the change in the other's store."""
    with alice.store() as alice_store, bob.store() as bob_store:
        list_id = alice_store.create("Latency").id
        alice.start_service()
        wait_until(lambda: synced(alice_store))
        state = alice_store.load(list_id)
        bob_store.merge_remote(list_id, state)  # bob joins the list
        bob.start_service()
        wait_until(lambda: synced(bob_store))
        bob_store.listen()
        samples = []
        for index in range(edits):
            name = f"Item {index}"
            start = time.perf_counter()
            alice_store.add_item(list_id, name)
            while bob_store.item(list_id, name) is None:
                bob_store.wait_for_change(1.0)
            samples.append((time.perf_counter() - start) * 1000)
        return samples


def cloud_write_round_trips(proxies: list[str], writes: int) -> list[float]:
    """Return the latencies (ms) of one-item deltas written straight to the cloud (W durable acks): the
    share of the edit -> other home path that the ring itself takes."""

    async def measure() -> list[float]:
        client = CloudClient(proxies)
        shopping = ShoppingList("bench-cloud")
        list_id = secrets.token_hex(16)  # a list id as the store makes them
        samples = []
        try:
            for index in range(writes):
                delta = shopping.add_item(f"Item {index}")
                start = time.perf_counter()
                await client.write(list_id, delta)
                samples.append((time.perf_counter() - start) * 1000)
        finally:
            client.close()
        return samples

    return asyncio.run(measure())


def catch_up(home: BenchHome, lists: int, edits: int) -> tuple[float, float, float]:
    """Return (seconds until every one of `edits` offline edits across `lists` new lists is acknowledged
    by the cloud, seconds until the oldest of them is, CPU seconds the service used meanwhile), counted
    from starting the sync service: the edits were made while it was not running, as on a laptop that
    was off the network. The oldest edit travels in the first push, so the second figure is start-up
    plus one round trip; the third does not depend on how busy the machine is."""
    home.stop_service()
    with home.store() as store:
        ids = [store.create(f"Offline {number}").id for number in range(lists)]
        for index in range(edits):
            store.add_item(ids[index % lists], f"Thing {index}")
        (oldest,) = store.outbox(limit=1)
        start = time.perf_counter()
        service = home.start_service()
        wait_until(lambda: store.outbox(limit=1)[:1] != [oldest], limit=300)
        first = time.perf_counter() - start
        wait_until(lambda: outbox_empty(store), limit=300)
        total = time.perf_counter() - start
        used = service.cpu_times()
        return total, first, used.user + used.system


def idle_cost(home: BenchHome, lists: int, seconds: float, *, headless: bool) -> tuple[float, float]:
    """Return (CPU %, RSS MiB) of an idle sync service following `lists` lists."""
    home.stop_service()
    with home.store() as store:
        for number in range(lists - len(store.lists())):
            store.create(f"Idle {number}")
        started = datetime.now(UTC).replace(microsecond=0)
        process = home.start_service(headless=headless)
        wait_until(lambda: synced(store, since=started))
    process.cpu_percent(None)
    time.sleep(seconds)  # measuring idle cost: the service must be left alone for this long
    cpu = process.cpu_percent(None)
    rss = process.memory_info().rss / 2**20
    home.stop_service()
    return cpu, rss


def run(edits: int, idle_seconds: float) -> list[tuple[str, str, str]]:
    with tempfile.TemporaryDirectory(prefix="shoplist-sync-bench-") as folder:
        base = Path(folder)
        (base / "cloud").mkdir()
        with local_cluster(base / "cloud") as ready:
            proxies = ready["proxies"]
            alice, bob = BenchHome(base / "alice", proxies), BenchHome(base / "bob", proxies)
            try:
                latencies = edit_to_other_home(alice, bob, edits)
                cloud_writes = cloud_write_round_trips(proxies, edits)
                catch_up_seconds, first_acknowledged, catch_up_cpu = catch_up(alice, 20, 1000)
                bob.stop_service()
                headless = idle_cost(bob, 100, idle_seconds, headless=True)
                with_qt = idle_cost(bob, 100, idle_seconds, headless=False)
            finally:
                alice.close()
                bob.close()
    load = os.getloadavg()[1]  # the 5-minute load average: how busy the machine was meanwhile
    return [
        ("load average of the machine (5 min) during the run", f"{load:.1f} x", ""),
        ("edit -> other home's store, p50", f"{percentile(latencies, 0.5):.1f} ms", "<= 20 ms"),
        ("edit -> other home's store, p99", f"{percentile(latencies, 0.99):.1f} ms", "<= 100 ms"),
        ("  of which: cloud write, W acks, p50", f"{percentile(cloud_writes, 0.5):.1f} ms", ""),
        ("1,000 offline edits in 20 lists caught up", f"{catch_up_seconds:.2f} s", "<= 2 s"),
        ("  of which: start until the oldest edit is acknowledged", f"{first_acknowledged:.2f} s", ""),
        ("  CPU time shoplist-sync used for it (start-up included)", f"{catch_up_cpu:.2f} s", ""),
        ("idle shoplist-sync, 100 lists, headless: CPU", f"{headless[0]:.2f} %", "<= 1 %"),
        ("idle shoplist-sync, 100 lists, headless: RSS", f"{headless[1]:.0f} MiB", "<= 60 MB"),
        ("idle shoplist-sync, 100 lists, with Qt: CPU", f"{with_qt[0]:.2f} %", "<= 1 %"),
        ("idle shoplist-sync, 100 lists, with Qt: RSS", f"{with_qt[1]:.0f} MiB", "<= 120 MB"),
    ]


def main() -> None:
    os.environ["SHOPLIST_KEYRING"] = "file"  # throwaway homes: never the desktop's keyring
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="whole runs; the median of each figure is shown")
    parser.add_argument("--edits", type=int, default=300, help="edits timed per run")
    parser.add_argument("--idle-seconds", type=float, default=20.0, help="how long to watch the idle service")
    arguments = parser.parse_args()
    runs = []
    for number in range(arguments.runs):
        runs.append(run(arguments.edits, arguments.idle_seconds))
        print(f"run {number + 1}: " + "; ".join(f"{row[0].strip()} {row[1]}" for row in runs[-1]), flush=True)
    rows = []
    for index, (label, _, target) in enumerate(runs[0]):
        values = [float(result[index][1].split()[0]) for result in runs]
        unit = runs[0][index][1].split()[1]
        digits = 2 if unit == "s" else 1
        rows.append((label, f"{statistics.median(values):.{digits}f} {unit}", target))
    print(f"Sync benchmark, median of {arguments.runs} runs\n")
    print("| measurement | measured | target |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
