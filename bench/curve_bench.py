"""What CurveZMQ costs: write throughput and write latency p50 with 1, 8 and 32 clients on two local
clusters (3 nodes, 2 proxies each) running side by side, one over CurveZMQ and one `--insecure`. The
measurements are interleaved (each round runs every client count on both clusters, alternating which
goes first) so that the machine's other load falls on both alike; the table shows the median of the
rounds, the cost of Curve as a share of the plain-text throughput, and the CPU time one write cost the
cluster's processes (nodes, proxies, PostgreSQL) and the client, which holds up on a busy machine where
throughput mostly measures the scheduler. A last table isolates the transport: the CPU time of one
request/reply round trip between a DEALER and a ROUTER in one process, Curve against plain text."""

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

import zmq
from cluster_bench import CpuMeter
from local_cluster import local_cluster

from crdt import ShoppingList
from sync_service.client import CloudClient

CLIENTS = (1, 8, 32)
MODES = ("curve", "insecure")
TARGET = 0.20
"""Curve may cost at most this share of the plain-text write throughput."""

Figures = tuple[float, float, float, float]
"""writes/s, write latency p50 (ms), cluster CPU per write (ms), client CPU per write (ms)."""


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
    proxies: list[str], clients: int, seconds: float, insecure: bool, tag: str, meter: CpuMeter
) -> Figures:
    """Return the figures while `clients` clients write as fast as they can for `seconds`."""
    writers = [
        Writer(proxies[index % len(proxies) :] + proxies[: index % len(proxies)], f"{tag}-{index}", insecure)
        for index in range(clients)
    ]
    for _ in range(5):  # connect, handshake and warm up before timing
        await asyncio.gather(*(writer.write_one() for writer in writers))
    samples: list[float] = []

    async def loop(writer: Writer) -> None:
        while time.perf_counter() < stop_at:
            samples.append(await writer.write_one())

    cluster_before, client_before = sum(meter.sample().values()), time.process_time()
    started = time.perf_counter()
    stop_at = started + seconds
    await asyncio.gather(*(loop(writer) for writer in writers))
    elapsed = time.perf_counter() - started
    cluster_cpu = sum(meter.sample().values()) - cluster_before
    client_cpu = time.process_time() - client_before
    for writer in writers:
        writer.client.close()
    count = len(samples)
    median = 1000 * statistics.median(samples)
    return count / elapsed, median, 1000 * cluster_cpu / count, 1000 * client_cpu / count


def round_trip_cpu(secure: bool, count: int, size: int) -> float:
    """Return the CPU time (µs, both ends and libzmq's I/O thread) of one DEALER -> ROUTER -> DEALER round
    trip of a `size`-byte message, over Curve or plain text."""
    context = zmq.Context()
    server, client = context.socket(zmq.ROUTER), context.socket(zmq.DEALER)
    if secure:
        server_public, server_secret = zmq.curve_keypair()
        client_public, client_secret = zmq.curve_keypair()
        server.curve_server, server.curve_secretkey = True, server_secret
        client.curve_serverkey, client.curve_publickey = server_public, client_public
        client.curve_secretkey = client_secret
    port = server.bind_to_random_port("tcp://127.0.0.1")
    client.connect(f"tcp://127.0.0.1:{port}")
    payload = b"x" * size
    for _ in range(100):  # handshake and warm-up
        client.send(payload)
        server.send_multipart(server.recv_multipart())
        client.recv()
    started = time.process_time()
    for _ in range(count):
        client.send(payload)
        server.send_multipart(server.recv_multipart())
        client.recv()
    used = time.process_time() - started
    context.destroy(0)
    return 1e6 * used / count


def load_average() -> str:
    """Return the machine's load averages as `uptime` shows them."""
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def run(rounds: int, seconds: float) -> dict[tuple[str, int], list[Figures]]:
    """Start both clusters and run the interleaved rounds; return every measurement by (mode, clients)."""
    results: dict[tuple[str, int], list[Figures]] = {}
    data = Path(tempfile.mkdtemp(prefix="shoplist-curve-bench-"))
    for mode in MODES:
        (data / mode).mkdir()
    try:
        with (
            local_cluster(data / "curve") as curve,
            local_cluster(data / "insecure", insecure=True) as insecure,
        ):
            ready = {"curve": curve, "insecure": insecure}
            meters = {mode: CpuMeter(ready[mode], data / mode) for mode in MODES}
            for round_number in range(rounds):
                for clients in CLIENTS:
                    order = MODES if (round_number + clients) % 2 == 0 else MODES[::-1]
                    for mode in order:
                        tag = f"r{round_number}-c{clients}-{mode}"
                        proxies = ready[mode]["proxies"]
                        figures = asyncio.run(
                            measure(proxies, clients, seconds, mode == "insecure", tag, meters[mode])
                        )
                        results.setdefault((mode, clients), []).append(figures)
                        rate, p50, cluster_cpu, client_cpu = figures
                        print(
                            f"  round {round_number + 1} {clients:>2} clients {mode:<8} {rate:8,.0f}/s "
                            f"p50 {p50:.2f} ms  CPU/write: cluster {cluster_cpu:.2f} ms, "
                            f"client {client_cpu:.2f} ms",
                            file=sys.stderr,
                            flush=True,
                        )
    finally:
        shutil.rmtree(data, ignore_errors=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is shown")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each throughput run")
    arguments = parser.parse_args()
    before = load_average()
    results = run(arguments.rounds, arguments.seconds)
    transport = {
        secure: statistics.median(round_trip_cpu(secure, 20_000, 300) for _ in range(arguments.rounds))
        for secure in (True, False)
    }
    after = load_average()
    print(
        "CurveZMQ against --insecure, 3 nodes + 2 proxies each,"
        f" median of {arguments.rounds} interleaved rounds of {arguments.seconds:g} s"
    )
    print(f"load before: {before}\nload after:  {after}\n")
    print(
        "| clients | writes/s Curve | writes/s insecure | Curve costs (≤ 20%) | p50 Curve | p50 insecure "
        "| cluster CPU/write Curve | insecure | client CPU/write Curve | insecure |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for clients in CLIENTS:
        curve = [statistics.median(column) for column in zip(*results[("curve", clients)], strict=True)]
        plain = [statistics.median(column) for column in zip(*results[("insecure", clients)], strict=True)]
        cost = 1 - curve[0] / plain[0]
        met = "met" if cost <= TARGET else "not met"
        print(
            f"| {clients} | {curve[0]:,.0f}/s | {plain[0]:,.0f}/s | {cost:+.1%} ({met}) | {curve[1]:.2f} ms "
            f"| {plain[1]:.2f} ms | {curve[2]:.2f} ms | {plain[2]:.2f} ms | {curve[3]:.2f} ms "
            f"| {plain[3]:.2f} ms |"
        )

    print(
        f"\n| one 300-byte round trip, CPU | Curve | plain text | Curve adds |\n|---|---|---|---|\n"
        f"| DEALER -> ROUTER -> DEALER, one process | {transport[True]:.1f} µs | {transport[False]:.1f} µs "
        f"| {transport[True] - transport[False]:.1f} µs |"
    )


if __name__ == "__main__":
    main()
