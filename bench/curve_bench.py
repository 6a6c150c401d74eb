"""What CurveZMQ costs: write throughput and write latency p50 with 1, 8 and 32 clients on two local
clusters (3 nodes, 2 proxies each) running side by side, one over CurveZMQ and one `--insecure`. The
measurements are interleaved (each round runs every client count on both clusters, alternating which
goes first) so that the machine's other load falls on both alike; the table shows the median of the
rounds and the cost of Curve as a share of the plain-text throughput."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from local_cluster import local_cluster

from crdt import ShoppingList
from sync_service.client import CloudClient

CLIENTS = (1, 8, 32)
MODES = ("curve", "insecure")
TARGET = 0.20
"""Curve may cost at most this share of the plain-text write throughput."""


class Writer:
    """One client adding a new item to one of its lists per write (each delta a single add)."""

    def __init__(self, proxies: list[str], name: str, insecure: bool) -> None:
        self.client = CloudClient(proxies, insecure=insecure)
        self.name = name
        self.replicas = [ShoppingList(f"{name}-{index}") for index in range(10)]
        self.count = 0

    async def write_one(self) -> float:
        """Write one delta; return how long its acknowledgement took, in seconds."""
        index = self.count % len(self.replicas)
        body = self.replicas[index].add_item(f"item {self.count}").to_bytes()
        self.count += 1
        started = time.perf_counter()
        await self.client.write(f"{self.name}-list-{index}", body)
        return time.perf_counter() - started


async def measure(
    proxies: list[str], clients: int, seconds: float, insecure: bool, tag: str
) -> tuple[float, float]:
    """Return (writes/s, write latency p50 in ms) while `clients` clients write as fast as they can."""
    writers = [
        Writer(proxies[index % len(proxies) :] + proxies[: index % len(proxies)], f"{tag}-{index}", insecure)
        for index in range(clients)
    ]
    for _ in range(5):  # connect, handshake and warm up before timing
        await asyncio.gather(*(writer.write_one() for writer in writers))
    stop_at = time.perf_counter() + seconds
    samples: list[float] = []

    async def loop(writer: Writer) -> None:
        while time.perf_counter() < stop_at:
            samples.append(await writer.write_one())

    started = time.perf_counter()
    await asyncio.gather(*(loop(writer) for writer in writers))
    elapsed = time.perf_counter() - started
    for writer in writers:
        writer.client.close()
    return len(samples) / elapsed, 1000 * statistics.median(samples)


def load_average() -> str:
    """Return the machine's load averages as `uptime` shows them."""
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is shown")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each throughput run")
    arguments = parser.parse_args()
    results: dict[tuple[str, int], list[tuple[float, float]]] = {}
    before = load_average()
    data = Path(tempfile.mkdtemp(prefix="shoplist-curve-bench-"))
    for mode in MODES:
        (data / mode).mkdir()
    with (
        local_cluster(data / "curve") as curve,
        local_cluster(data / "insecure", insecure=True) as insecure,
    ):
        proxies = {"curve": curve["proxies"], "insecure": insecure["proxies"]}
        for round_number in range(arguments.rounds):
            for clients in CLIENTS:
                order = MODES if (round_number + clients) % 2 == 0 else MODES[::-1]
                for mode in order:
                    tag = f"r{round_number}-c{clients}-{mode}"
                    figures = asyncio.run(
                        measure(proxies[mode], clients, arguments.seconds, mode == "insecure", tag)
                    )
                    results.setdefault((mode, clients), []).append(figures)
                    print(
                        f"  round {round_number + 1} {clients:>2} clients {mode:<8} "
                        f"{figures[0]:8,.0f}/s  p50 {figures[1]:.2f} ms",
                        file=sys.stderr,
                        flush=True,
                    )
    shutil.rmtree(data, ignore_errors=True)
    after = load_average()
    print(
        "CurveZMQ against --insecure, 3 nodes + 2 proxies each,"
        f" median of {arguments.rounds} interleaved rounds"
    )
    print(f"load before: {before}\nload after:  {after}\n")
    print(
        "| clients | writes/s Curve | writes/s insecure | Curve costs "
        "| p50 Curve | p50 insecure | met (≤ 20%) |"
    )
    print("|---|---|---|---|---|---|---|")
    for clients in CLIENTS:
        curve_rate = statistics.median(rate for rate, _ in results[("curve", clients)])
        plain_rate = statistics.median(rate for rate, _ in results[("insecure", clients)])
        curve_p50 = statistics.median(p50 for _, p50 in results[("curve", clients)])
        plain_p50 = statistics.median(p50 for _, p50 in results[("insecure", clients)])
        cost = 1 - curve_rate / plain_rate
        met = "yes" if cost <= TARGET else "no"
        print(
            f"| {clients} | {curve_rate:,.0f}/s | {plain_rate:,.0f}/s | {cost:+.1%} | "
            f"{curve_p50:.2f} ms | {plain_p50:.2f} ms | {met} |"
        )


if __name__ == "__main__":
    main()
