"""Anti-entropy benchmark: bytes and messages exchanged to repair 1 differing list among 10k and 100k (the
exchange code the nodes run, between in-memory replicas, every message encoded with the real codec); the
time a real cluster takes to detect and repair a list one replica missed; and foreground write throughput
through a proxy with anti-entropy on and off.

  python bench/antientropy_bench.py            # everything, prints a Markdown table
  python bench/antientropy_bench.py --quick    # smaller runs
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import zmq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.faults import running_cluster
from crdt import ShoppingList
from crdt.replica import new_replica_id
from protocol.messages import Kind, Message, decode, encode
from server import sockets
from server.capability import storage_id
from server.cli import request
from server.ring import build_ring
from tests.server.fakes import MemoryReplica, run_anti_entropy


def repair_cost(lists: int) -> dict[str, Any]:
    """Return what one exchange costs to find and repair 1 differing list among `lists` shared ones."""
    a, b = MemoryReplica.empty("a"), MemoryReplica.empty("b")
    for number in range(lists):
        delta = ShoppingList("seed").add_item(f"item {number % 50}")
        a.write(f"home-{number:06d}", delta)
        b.write(f"home-{number:06d}", delta)
    a.write(f"home-{lists // 2:06d}", ShoppingList("late").add_item("Coffee"))
    began = time.perf_counter()
    cost = run_anti_entropy(a, b)
    elapsed = time.perf_counter() - began
    assert cost.repaired == 1 and a.lists == b.lists
    in_sync = run_anti_entropy(a, b)
    return {
        "lists": lists,
        "messages": cost.messages,
        "bytes": cost.bytes,
        "round_trips": cost.rounds,
        "compute_ms": round(elapsed * 1000, 2),
        "in_sync_bytes": in_sync.bytes,
        "in_sync_messages": in_sync.messages,
    }


def _fetch_items(endpoint: str, list_id: str) -> set[str]:
    answer = request(endpoint, Kind.FETCH, 2.0, list=list_id)
    return (
        set(ShoppingList.from_bytes(answer.body).items()) if answer and answer.kind is Kind.STATE else set()
    )


def detect_and_repair(root: Path, trials: int, preload: int) -> dict[str, Any]:
    """Return seconds from a write that reached only one replica to every owner holding it (real cluster)."""
    samples = []
    with running_cluster(root, nodes=3, proxies=1, netns=False) as cluster:
        proxy = next(iter(cluster.proxies.values())).endpoint
        for number in range(preload):
            body = ShoppingList(f"seed{number}").add_item("Milk").to_bytes()
            request(proxy, Kind.WRITE, 5.0, body=body, list=f"pre-{number}")
        ring = build_ring(cluster.ring_members())
        for trial in range(trials):
            list_id = storage_id(f"pre-{trial % max(1, preload)}")  # what the proxy stored it under
            owners = [cluster.nodes[name] for name in ring.preference_list(list_id, 3)]
            item = f"only-on-one-{trial}"
            body = ShoppingList(new_replica_id()).add_item(item).to_bytes()
            began = time.monotonic()
            answer = request(owners[0].endpoint, Kind.REPLICATE, 2.0, body=body, list=list_id)
            assert answer is not None and answer.kind is Kind.OK
            while not all(item in _fetch_items(owner.endpoint, list_id) for owner in owners[1:]):
                assert time.monotonic() - began < 30, "anti-entropy did not repair within 30 s"
                time.sleep(0.02)
            samples.append(time.monotonic() - began)
        statuses = [cluster.node_status(node) or {} for node in cluster.nodes.values()]
    entropy = [status.get("anti_entropy", {}) for status in statuses]
    return {
        "trials": trials,
        "preloaded_lists": preload,
        "p50_s": round(statistics.median(samples), 3),
        "max_s": round(max(samples), 3),
        "exchange_every_s": 1.0,
        "maintenance_messages_per_node": round(statistics.mean(e.get("messages", 0) for e in entropy)),
    }


def _writer(proxy: str, stop: threading.Event, counts: list[int], index: int) -> None:
    context = zmq.Context.instance()
    socket = sockets.configure(context.socket(zmq.DEALER))
    socket.connect(proxy)
    state = ShoppingList(new_replica_id())
    number = 0
    try:
        while not stop.is_set():
            number += 1
            delta = state.add_item(f"w{index}-{number}")
            list_id = f"load-{index}-{number % 20}"
            socket.send_multipart(
                encode(Message(Kind.WRITE, uuid.uuid4().hex, {"list": list_id}, delta.to_bytes()))
            )
            if socket.poll(5000) and decode(socket.recv_multipart()).kind is Kind.OK:
                counts[index] += 1
    finally:
        socket.close(0)


def _node_cpu(cluster: Any) -> float:
    """Return the CPU seconds the node processes (not their PostgreSQL) have used so far."""
    total = 0.0
    for node in cluster.nodes.values():
        times = psutil.Process(node.process.pid).cpu_times()
        total += times.user + times.system
    return total


def throughput(root: Path, anti_entropy: bool, seconds: float, writers: int) -> tuple[float, float]:
    """Return (acknowledged writes per second, node CPU milliseconds per write) through one proxy of a
    3-node cluster. CPU per write is the steadier figure on a shared machine."""
    args = [] if anti_entropy else ["--no-anti-entropy"]
    with running_cluster(root, nodes=3, proxies=1, netns=False, node_args=args) as cluster:
        proxy = next(iter(cluster.proxies.values())).endpoint
        stop = threading.Event()
        counts = [0] * writers
        threads = [
            threading.Thread(target=_writer, args=(proxy, stop, counts, i), daemon=True)
            for i in range(writers)
        ]
        for thread in threads:
            thread.start()
        time.sleep(1.0)  # warm up
        start_count, began, cpu = sum(counts), time.monotonic(), _node_cpu(cluster)
        time.sleep(seconds)
        written = sum(counts) - start_count
        rate = written / (time.monotonic() - began)
        cpu_per_write = 1000 * (_node_cpu(cluster) - cpu) / max(1, written)
        stop.set()
        for thread in threads:
            thread.join(10)
    return rate, cpu_per_write


def measure_throughput(root: Path, rounds: int, quick: bool) -> dict[str, Any]:
    """Alternate clusters with anti-entropy off and on; return medians of writes/s and CPU per write."""
    samples: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for round_number in range(rounds):
        for enabled in (False, True):
            path = root / f"tp-{round_number}-{enabled}"
            path.mkdir()
            rate, cpu = throughput(path, enabled, 5.0 if quick else 10.0, 8)
            samples[enabled].append((rate, cpu))
            state = "on" if enabled else "off"
            print(f"anti-entropy {state}: {rate:.0f} writes/s, {cpu:.2f} node CPU ms per write", flush=True)
    rate = {enabled: statistics.median(r for r, _ in samples[enabled]) for enabled in samples}
    cpu = {enabled: statistics.median(c for _, c in samples[enabled]) for enabled in samples}
    return {
        "writes_per_s_off": round(rate[False], 1),
        "writes_per_s_on": round(rate[True], 1),
        "throughput_cost_percent": round(100 * (1 - rate[True] / rate[False]), 1),
        "cpu_ms_per_write_off": round(cpu[False], 3),
        "cpu_ms_per_write_on": round(cpu[True], 3),
        "cpu_cost_percent": round(100 * (cpu[True] / cpu[False] - 1), 1),
        "samples": {str(k): [[round(r, 1), round(c, 3)] for r, c in v] for k, v in samples.items()},
    }


def main() -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=3, help="on/off throughput rounds (alternating)")
    parser.add_argument("--only", choices=["repair", "detect", "throughput"], default=None)
    args = parser.parse_args()
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "load_average": os.getloadavg()[0]}
    if args.only in (None, "repair"):
        sizes = [10_000] if args.quick else [10_000, 100_000]
        results["repair"] = [repair_cost(size) for size in sizes]
        print(json.dumps(results["repair"]), flush=True)
    with tempfile.TemporaryDirectory(prefix="shoplist-ae-") as directory:
        root = Path(directory)
        if args.only in (None, "detect"):
            (root / "detect").mkdir()
            trials, preload = (5, 200) if args.quick else (20, 1000)
            results["detect"] = detect_and_repair(root / "detect", trials, preload)
            print(json.dumps(results["detect"]), flush=True)
        if args.only in (None, "throughput"):
            results["throughput"] = measure_throughput(root, 1 if args.quick else args.rounds, args.quick)
    results["load_average_after"] = os.getloadavg()[0]
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
