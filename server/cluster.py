"""`shoplist-server cluster`: start a local ring (each node a process with its own PostgreSQL) and proxies,
print one JSON ready line once every part accepts writes, and stop all of it on SIGINT/SIGTERM."""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from crdt import ShoppingList
from protocol.local_cluster import local_cluster_file
from protocol.messages import Kind
from server import postgres
from server.cli import request

log = logging.getLogger("shoplist.cluster")

READY_DEADLINE = 180.0


LOWEST_PORT = 10_000
EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def free_ports(count: int) -> list[int]:
    """Return `count` distinct TCP ports free on 127.0.0.1 right now, chosen below the range the kernel
    hands out to outgoing connections: a node binds its port only after its PostgreSQL started, and
    meanwhile any connection on the machine (peers already dialling that very port among them) could be
    given it as a source port."""
    start = ephemeral_range_start()
    candidates = list(range(LOWEST_PORT, start))
    random.shuffle(candidates)
    holders: list[socket.socket] = []
    try:
        for candidate in candidates:
            holder = socket.socket()
            try:
                holder.bind(("127.0.0.1", candidate))
            except OSError:
                holder.close()
                continue
            holders.append(holder)
            if len(holders) == count:
                return [holder.getsockname()[1] for holder in holders]
        raise OSError(f"fewer than {count} free ports between {LOWEST_PORT} and {start}")
    finally:
        for holder in holders:
            holder.close()


def ephemeral_range_start() -> int:
    """Return the first port of the kernel's range for outgoing connections (IANA's 49152 if unknown)."""
    try:
        return max(LOWEST_PORT + 1000, int(EPHEMERAL_RANGE_FILE.read_text().split()[0]))
    except (OSError, ValueError, IndexError):
        return 49152


def server_program() -> list[str]:
    """Return the command that runs `shoplist-server`: this very executable in a frozen bundle (where
    `sys.executable` is `shoplist-server` itself), else this Python with the module."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, "-m", "server.cli"]


def node_command(
    node_id: str, endpoint: str, publish: str, data: Path, seeds: list[str], log_level: str
) -> list[str]:
    """Return the command line that runs one node (also used to restart a killed one)."""
    return [
        *server_program(),
        "--log-level",
        log_level,
        "node",
        "--id",
        node_id,
        "--bind",
        endpoint,
        "--publish",
        publish,
        "--data",
        str(data),
        "--seeds",
        ",".join(seeds),
    ]


def run_cluster(nodes: int, proxies: int, data: Path, port: int | None, log_level: str) -> int:
    """Run the cluster in the foreground; return the exit status."""
    if nodes < 1 or proxies < 1:
        print("shoplist-server cluster: need at least one node and one proxy", file=sys.stderr)
        return 2
    try:
        postgres.ensure_system_user()  # once, before the nodes start side by side
    except postgres.SystemUserError as problem:
        print(f"shoplist-server cluster: {problem}", file=sys.stderr)
        return 1
    ports = list(range(port, port + 2 * (nodes + proxies))) if port else free_ports(2 * (nodes + proxies))
    url = [f"tcp://127.0.0.1:{number}" for number in ports]
    proxy_urls = [(url[2 * i], url[2 * i + 1]) for i in range(proxies)]
    node_urls = [(url[2 * (proxies + i)], url[2 * (proxies + i) + 1]) for i in range(nodes)]
    seeds = [endpoint for endpoint, _ in node_urls]
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    children: list[subprocess.Popen[bytes]] = []
    node_info = []
    published: Path | None = None
    ready_line = ""
    try:
        for index, (endpoint, publish) in enumerate(node_urls, start=1):
            node_id = f"n{index}"
            command = node_command(node_id, endpoint, publish, data / node_id, seeds, log_level)
            children.append(subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL))
            node_info.append(
                {"id": node_id, "pid": children[-1].pid, "endpoint": endpoint, "publish": publish}
            )
        for index, (endpoint, publish) in enumerate(proxy_urls, start=1):
            command = [
                *server_program(),
                "--log-level",
                log_level,
                "proxy",
                "--id",
                f"p{index}",
                "--bind",
                endpoint,
                "--publish",
                publish,
                "--seeds",
                ",".join(seeds),
            ]
            children.append(subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL))
        if not _wait_ready([e for e, _ in proxy_urls], [n["id"] for n in node_info], stop, children):
            return 1
        ready_line = json.dumps({"proxies": [e for e, _ in proxy_urls], "nodes": node_info})
        print(ready_line, flush=True)
        published = _publish(ready_line)
        log.info("cluster ready: %d nodes, %d proxies", nodes, proxies)
        stop.wait()
        return 0
    finally:
        if published is not None:
            _unpublish(published, ready_line)
        _stop_all(children)
        for node in node_info:
            postgres.stop_leftover(data / str(node["id"]) / "postgres")


def _publish(ready_line: str) -> Path | None:
    """Write the ready line where local clients look for a cluster; return the file (None if that
    failed: clients can still be told the proxies explicitly)."""
    path = local_cluster_file(os.environ)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        temporary.write_text(ready_line + "\n")
        temporary.replace(path)
    except OSError as error:
        log.warning("could not publish the cluster for local clients at %s: %s", path, error)
        return None
    log.info("published for local clients at %s", path)
    return path


def _unpublish(path: Path, ready_line: str) -> None:
    """Remove the published file if it is still ours (a newer cluster may have replaced it)."""
    try:
        if path.read_text().strip() == ready_line:
            path.unlink()
    except OSError:
        pass


def _wait_ready(
    proxy_endpoints: list[str],
    node_ids: list[str],
    stop: threading.Event,
    children: list[subprocess.Popen[bytes]],
) -> bool:
    """Wait until every proxy sees every node alive and accepts a write (an empty delta)."""
    deadline = time.monotonic() + READY_DEADLINE
    probe = ShoppingList("cluster-probe").to_bytes()
    pending = list(proxy_endpoints)
    while pending:
        if stop.is_set() or time.monotonic() > deadline:
            log.error("cluster did not become ready (waiting for %s)", ", ".join(pending))
            return False
        if any(child.poll() is not None for child in children):
            log.error("a cluster process exited during startup")
            return False
        endpoint = pending[0]
        if _proxy_ready(endpoint, node_ids, probe):
            pending.pop(0)
        else:
            stop.wait(0.2)
    return True


def _proxy_ready(endpoint: str, node_ids: list[str], probe: bytes) -> bool:
    answer = request(endpoint, Kind.STATUS, 1.0)
    if answer is None or answer.kind is not Kind.STATUS_REPLY:
        return False
    members: list[dict[str, Any]] = answer.fields.get("info", {}).get("members", [])
    alive = {member["id"] for member in members if member["state"] == "alive"}
    if alive != set(node_ids):
        return False
    answer = request(endpoint, Kind.WRITE, 3.0, body=probe, list="cluster-ready-probe")
    return answer is not None and answer.kind is Kind.OK


def _stop_all(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
