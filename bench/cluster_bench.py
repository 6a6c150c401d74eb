"""Cloud benchmark on `shoplist-server cluster --nodes 3 --proxies 2`: write and read latency, writes/s with
1, 8 and 32 clients, write -> subscriber latency, a write into a 10k-item list against an empty one, and a
failover run (one node SIGKILLed under steady writes: failed writes, longest stall, acknowledged writes
lost). Each run starts a fresh cluster; the table shows the median of every figure over the runs."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from local_cluster import local_cluster

from crdt import ShoppingList
from sync_service.client import CloudClient, CloudError

FILL_BATCH = 200
"""Items per write while filling the big list (a large delta costs every replica a long transaction)."""


@dataclass(frozen=True)
class Figure:
    """One row of the table: how to show a measured value and whether it meets its target."""

    label: str
    unit: str
    target: str
    meets: Callable[[float, dict[str, float]], bool] | None = None


FIGURES = [
    Figure("ping round trip to a proxy p50 (no ring work)", "ms", ""),
    Figure("ping round trip to a proxy p99 (no ring work)", "ms", ""),
    Figure("durable commit alone p50 (PostgreSQL INSERT + WAL flush)", "ms", ""),
    Figure("durable commit alone p99 (PostgreSQL INSERT + WAL flush)", "ms", ""),
    Figure("write latency p50 (1 client)", "ms", "≤ 3 ms", lambda v, _: v <= 3),
    Figure("write latency p99 (1 client)", "ms", "≤ 15 ms", lambda v, _: v <= 15),
    Figure("write latency p99.9 (1 client)", "ms", ""),
    Figure("writes/s, 1 client", "/s", ""),
    Figure("writes/s, 8 clients", "/s", ""),
    Figure("writes/s, 32 clients", "/s", "≥ 2,000/s", lambda v, _: v >= 2000),
    Figure("CPU per write at 32 clients: 3 nodes", "ms", ""),
    Figure("CPU per write at 32 clients: 2 proxies", "ms", ""),
    Figure("CPU per write at 32 clients: 3 PostgreSQL servers", "ms", ""),
    Figure("read latency p50 (1 client, 20 items)", "ms", ""),
    Figure("read latency p99 (1 client, 20 items)", "ms", ""),
    Figure("write → subscriber p50", "ms", "≤ 5 ms", lambda v, _: v <= 5),
    Figure("write → subscriber p99", "ms", "≤ 50 ms", lambda v, _: v <= 50),
    Figure("write p50 into an empty list", "ms", ""),
    Figure(
        "write p50 into a 10,000-item list",
        "ms",
        "≤ 1.5 times empty",
        lambda v, row: v <= 1.5 * row["write p50 into an empty list"],
    ),
    Figure("failover: failed writes", "", "0", lambda v, _: v == 0),
    Figure("failover: longest write before the kill", "ms", ""),
    Figure(
        "failover: longest stall (one write, from the kill on)", "ms", "≤ 1,000 ms", lambda v, _: v <= 1000
    ),
    Figure("failover: writes acknowledged", "", ""),
    Figure("failover: acknowledged writes lost", "", "0", lambda v, _: v == 0),
]


def percentile(samples: list[float], fraction: float) -> float:
    """Return the sample at `fraction` of the sorted samples (nearest rank)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Writer:
    """One client that adds a new item to one of its lists per write (each delta a single add)."""

    def __init__(self, proxies: list[str], name: str, lists: int = 10) -> None:
        self.client = CloudClient(proxies)
        self.name = name
        self.replicas = [ShoppingList(f"{name}-{index}") for index in range(lists)]
        self.acknowledged: dict[str, list[str]] = {f"{name}-list-{index}": [] for index in range(lists)}
        self.count = 0

    async def write_one(self) -> float:
        """Write one delta; return how long it took to be acknowledged, in seconds."""
        index = self.count % len(self.replicas)
        list_id = f"{self.name}-list-{index}"
        item = f"item {self.count}"
        body = self.replicas[index].add_item(item).to_bytes()
        self.count += 1
        started = time.perf_counter()
        await self.client.write(list_id, body)
        elapsed = time.perf_counter() - started
        self.acknowledged[list_id].append(item)
        return elapsed


class CpuMeter:
    """CPU time (user + system) used by the cluster's nodes, proxies and PostgreSQL servers."""

    def __init__(self, ready: dict[str, Any], data: Path) -> None:
        nodes = [psutil.Process(node["pid"]) for node in ready["nodes"]]
        parent = nodes[0].parent()
        self.groups = {
            "3 nodes": nodes,
            "2 proxies": [child for child in parent.children() if "proxy" in child.cmdline()],
            "3 PostgreSQL servers": [
                psutil.Process(
                    int((data / node["id"] / "postgres" / "postmaster.pid").read_text().split()[0])
                )
                for node in ready["nodes"]
            ],
        }

    def sample(self) -> dict[str, float]:
        """Return the CPU seconds used so far by each group (PostgreSQL with its backends)."""
        return {name: sum(_cpu(process) for process in processes) for name, processes in self.groups.items()}


def _cpu(process: psutil.Process) -> float:
    total = 0.0
    for member in [process, *process.children(recursive=True)]:
        try:
            times = member.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def rotated(proxies: list[str], by: int) -> list[str]:
    """Return `proxies` starting at `by` (spreads clients over the proxies)."""
    return proxies[by % len(proxies) :] + proxies[: by % len(proxies)]


async def timed(call: Callable[[], Awaitable[object]], count: int) -> list[float]:
    """Return how long each of `count` sequential awaits of `call()` took, in seconds."""
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return samples


def commit_latency(data: Path, count: int) -> dict[str, float]:
    """Time one-row INSERTs on a PostgreSQL server of its own (autocommit, so each waits for its WAL
    flush): the disk's part of every write, the floor under the write latency here."""
    import psycopg

    from server import postgres

    server = postgres.start(data / "commit-probe")
    with psycopg.connect(server.get_uri(), autocommit=True) as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS probe (number int)")
        samples = []
        for number in range(count):
            started = time.perf_counter()
            connection.execute("INSERT INTO probe VALUES (%s)", (number,))
            samples.append(time.perf_counter() - started)
    server.cleanup()
    return {
        "durable commit alone p50 (PostgreSQL INSERT + WAL flush)": 1000 * percentile(samples, 0.5),
        "durable commit alone p99 (PostgreSQL INSERT + WAL flush)": 1000 * percentile(samples, 0.99),
    }


async def ping_latency(proxies: list[str], count: int) -> dict[str, float]:
    """Round trips to a proxy that answers by itself: what one hop through this machine's scheduler
    costs, the floor under every other latency here."""
    client = CloudClient(proxies)
    samples = await timed(client.ping, count)
    client.close()
    return {
        "ping round trip to a proxy p50 (no ring work)": 1000 * percentile(samples, 0.5),
        "ping round trip to a proxy p99 (no ring work)": 1000 * percentile(samples, 0.99),
    }


async def write_latency(proxies: list[str], count: int) -> dict[str, float]:
    """Sequential writes from one client: p50, p99 and p99.9 in ms."""
    writer = Writer(proxies, "latency")
    for _ in range(50):  # warm up connections and caches
        await writer.write_one()
    samples = [await writer.write_one() for _ in range(count)]
    writer.client.close()
    return {
        "write latency p50 (1 client)": 1000 * percentile(samples, 0.5),
        "write latency p99 (1 client)": 1000 * percentile(samples, 0.99),
        "write latency p99.9 (1 client)": 1000 * percentile(samples, 0.999),
    }


async def throughput(
    proxies: list[str], clients: int, seconds: float, meter: CpuMeter | None = None
) -> tuple[float, dict[str, float]]:
    """Return writes/s acknowledged while `clients` concurrent clients write as fast as they can, and
    the CPU time per write (ms) of each group `meter` watches."""
    writers = [Writer(rotated(proxies, index), f"load{clients}-{index}") for index in range(clients)]
    await asyncio.gather(*(writer.write_one() for writer in writers))
    stop_at = time.perf_counter() + seconds
    started = time.perf_counter()
    before = meter.sample() if meter else {}

    async def loop(writer: Writer) -> int:
        done = 0
        while time.perf_counter() < stop_at:
            await writer.write_one()
            done += 1
        return done

    total = sum(await asyncio.gather(*(loop(writer) for writer in writers)))
    elapsed = time.perf_counter() - started
    after = meter.sample() if meter else {}
    for writer in writers:
        writer.client.close()
    return total / elapsed, {name: 1000 * (after[name] - before[name]) / total for name in after}


async def read_latency(proxies: list[str], count: int) -> dict[str, float]:
    """Sequential reads of a 20-item list: p50 and p99 in ms."""
    client = CloudClient(proxies)
    shopping = ShoppingList("reader")
    for number in range(20):
        await client.write("read-me", shopping.add_item(f"thing {number}"))
    samples = await timed(lambda: client.read("read-me"), count)
    client.close()
    return {
        "read latency p50 (1 client, 20 items)": 1000 * percentile(samples, 0.5),
        "read latency p99 (1 client, 20 items)": 1000 * percentile(samples, 0.99),
    }


async def subscriber_latency(proxies: list[str], count: int) -> dict[str, float]:
    """Write through the first proxy, listen through the second: time from sending a write until the
    subscriber holds the change, p50 and p99 in ms."""
    writer, listener = CloudClient(proxies[:1]), CloudClient(proxies[1:])
    sent: dict[str, float] = {}
    arrived: dict[str, float] = {}
    first = asyncio.Event()

    async def listen() -> None:
        async for _, change in listener.subscribe(["published"]):
            now = time.perf_counter()
            for name in change.items():
                arrived.setdefault(name, now)
            first.set()

    task = asyncio.create_task(listen())
    shopping = ShoppingList("publisher")
    while not first.is_set():  # a subscription takes effect a little after it is made (slow joiner)
        await writer.write("published", shopping.add_item("warm-up"))
        await asyncio.sleep(0.05)
    for number in range(count):
        name = f"change {number}"
        body = shopping.add_item(name).to_bytes()
        sent[name] = time.perf_counter()
        await writer.write("published", body)
    deadline = time.perf_counter() + 5
    while len(set(sent) & set(arrived)) < count and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)
    task.cancel()
    writer.close()
    listener.close()
    samples = [arrived[name] - sent[name] for name in sent if name in arrived]
    missing = count - len(samples)
    if missing:
        print(f"  {missing} of {count} changes never reached the subscriber", file=sys.stderr)
    return {
        "write → subscriber p50": 1000 * percentile(samples, 0.5),
        "write → subscriber p99": 1000 * percentile(samples, 0.99),
    }


async def big_list_cost(proxies: list[str], items: int, count: int) -> dict[str, float]:
    """Fill one list with `items` items, then alternate single-item writes into it and into a list that
    started empty: p50 of each in ms."""
    client = CloudClient(proxies, timeout=30)
    big, small = ShoppingList("big"), ShoppingList("small")
    for start in range(0, items, FILL_BATCH):
        delta = ShoppingList("big")
        for number in range(start, min(items, start + FILL_BATCH)):
            delta.merge(big.add_item(f"stocked item {number}"))
        await client.write("big-list", delta)
    await client.write("small-list", small.add_item("first"))
    timings: dict[str, list[float]] = {"big-list": [], "small-list": []}
    for number in range(count):
        for list_id, shopping in (("big-list", big), ("small-list", small)):
            body = shopping.add_item(f"new item {number}").to_bytes()
            started = time.perf_counter()
            await client.write(list_id, body)
            timings[list_id].append(time.perf_counter() - started)
    client.close()
    return {
        "write p50 into an empty list": 1000 * statistics.median(timings["small-list"]),
        "write p50 into a 10,000-item list": 1000 * statistics.median(timings["big-list"]),
    }


async def failover(ready: dict[str, Any], clients: int, seconds: float) -> dict[str, float]:
    """Steady writes from `clients` clients; SIGKILL one node a third of the way in. Then read every
    list back and count acknowledged items that are missing."""
    proxies = ready["proxies"]
    writers = [Writer(rotated(proxies, index), f"failover-{index}", lists=4) for index in range(clients)]
    failed = 0
    writes: list[tuple[float, float]] = []  # (started, seconds until acknowledged or failed)
    stop_at = time.perf_counter() + seconds
    killed_at: list[float] = []

    async def loop(writer: Writer) -> None:
        nonlocal failed
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            try:
                await writer.write_one()
            except CloudError:
                failed += 1
            writes.append((started, time.perf_counter() - started))

    async def kill_one() -> None:
        await asyncio.sleep(seconds / 3)
        os.kill(ready["nodes"][-1]["pid"], signal.SIGKILL)
        killed_at.append(time.perf_counter())

    await asyncio.gather(kill_one(), *(loop(writer) for writer in writers))
    before = [took for started, took in writes if started + took < killed_at[0]]
    around = [took for started, took in writes if started + took >= killed_at[0]]
    reader = CloudClient(proxies, timeout=10)
    lost = 0
    for writer in writers:
        for list_id, names in writer.acknowledged.items():
            stored = (await reader.read(list_id)).items()
            lost += sum(1 for name in names if name not in stored)
        writer.client.close()
    reader.close()
    return {
        "failover: failed writes": float(failed),
        "failover: longest write before the kill": 1000 * max(before),
        "failover: longest stall (one write, from the kill on)": 1000 * max(around),
        "failover: writes acknowledged": float(sum(len(n) for w in writers for n in w.acknowledged.values())),
        "failover: acknowledged writes lost": float(lost),
    }


async def one_run(ready: dict[str, Any], meter: CpuMeter, arguments: argparse.Namespace) -> dict[str, float]:
    """Measure every figure once on a fresh cluster (the failover run last: it kills a node)."""
    proxies = ready["proxies"]
    row = progress(await ping_latency(proxies, arguments.writes // 2))
    row |= progress(await write_latency(proxies, arguments.writes))
    for clients in (1, 8, 32):
        label = f"writes/s, {clients} client{'s' if clients > 1 else ''}"
        rate, cpu = await throughput(proxies, clients, arguments.seconds, meter if clients == 32 else None)
        row |= progress({label: rate})
    row |= progress({f"CPU per write at 32 clients: {name}": value for name, value in cpu.items()})
    row |= progress(await read_latency(proxies, arguments.writes // 2))
    row |= progress(await subscriber_latency(proxies, arguments.writes // 2))
    row |= progress(await big_list_cost(proxies, 10_000, arguments.writes // 4))
    row |= progress(await failover(ready, 8, arguments.failover_seconds))
    return row


def progress(figures: dict[str, float]) -> dict[str, float]:
    """Show `figures` on stderr as they are measured, and return them."""
    for label, value in figures.items():
        print(f"  {label}: {value:.2f}", file=sys.stderr)
    return figures


def show(value: float, unit: str) -> str:
    """Return `value` formatted for the table."""
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "/s":
        return f"{value:,.0f}/s"
    return f"{value:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="fresh clusters; the median of each figure")
    parser.add_argument("--writes", type=int, default=2000, help="sequential writes timed for latency")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each throughput run")
    parser.add_argument("--failover-seconds", type=float, default=9.0, help="length of the failover run")
    parser.add_argument("--failover-only", action="store_true", help="measure only the failover figures")
    arguments = parser.parse_args()
    rows = []
    for _ in range(arguments.runs):
        with (
            tempfile.TemporaryDirectory(prefix="shoplist-cluster-bench-") as data,
            local_cluster(Path(data)) as ready,
        ):
            if arguments.failover_only:
                rows.append(progress(asyncio.run(failover(ready, 8, arguments.failover_seconds))))
                continue
            row = progress(commit_latency(Path(data), arguments.writes // 2))
            rows.append(row | asyncio.run(one_run(ready, CpuMeter(ready, Path(data)), arguments)))
    figures = [figure for figure in FIGURES if figure.label in rows[0]]
    medians = {figure.label: statistics.median(row[figure.label] for row in rows) for figure in figures}
    print(f"Cluster benchmark (3 nodes, 2 proxies, N/R/W = 3/2/2), median of {arguments.runs} runs\n")
    print("| measurement | target | measured | met |\n|---|---|---|---|")
    for figure in figures:
        value = medians[figure.label]
        met = "" if figure.meets is None else ("yes" if figure.meets(value, medians) else "no")
        print(f"| {figure.label} | {figure.target} | {show(value, figure.unit)} | {met} |")


if __name__ == "__main__":
    main()
