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
from protocol.endpoints import with_key
from protocol.local_cluster import local_cluster_file
from protocol.messages import Kind
from server import postgres
from server.cli import request
from server.keys import MEMBERS_FILE, SECRET_SUFFIX, KeyPair, ensure_key_pair, load_members, write_members

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


ADMIN_KEY = "admin"
"""The key pair a local cluster makes for its own tools (`status`, `leave`, the tests): a member key."""


def cluster_keys(directory: Path, names: list[str]) -> dict[str, KeyPair]:
    """Return the key pair of every name (nodes, proxies, `admin`), creating the missing ones in
    `directory` (owner-only), and write the members file that lists them all (keeping the keys an
    earlier run's file revoked)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    pairs = {name: ensure_key_pair(directory, name) for name in [*names, ADMIN_KEY]}
    members = directory / MEMBERS_FILE
    revoked = load_members(members).revoked if members.exists() else frozenset()
    write_members(members, {name: pair.public for name, pair in pairs.items()}, revoked)
    return pairs


def security_options(name: str, keys: Path | None) -> list[str]:
    """Return the command-line options that give process `name` its key from the key directory `keys`
    and the members file there, or `--insecure` when `keys` is None."""
    if keys is None:
        return ["--insecure"]
    return ["--key", str(keys / f"{name}{SECRET_SUFFIX}"), "--members", str(keys / MEMBERS_FILE)]


def node_command(
    node_id: str,
    endpoint: str,
    publish: str,
    data: Path,
    seeds: list[str],
    log_level: str,
    keys: Path | None = None,
) -> list[str]:
    """Return the command line that runs one node (also used to restart a killed one), with its key from
    the key directory `keys` (seeds then carry `?key=`), or in plain text when `keys` is None."""
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
        *security_options(node_id, keys),
    ]


def run_cluster(
    nodes: int, proxies: int, data: Path, port: int | None, log_level: str, *, insecure: bool = False
) -> int:
    """Run the cluster in the foreground; return the exit status. Unless `insecure`, every key pair and
    the members file are made (once) in `data/keys`, and the ready line's proxies carry their keys."""
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
    node_ids = [f"n{index}" for index in range(1, nodes + 1)]
    proxy_ids = [f"p{index}" for index in range(1, proxies + 1)]
    keys = None if insecure else data / "keys"
    try:
        pairs = cluster_keys(keys, node_ids + proxy_ids) if keys else {}
    except (OSError, ValueError) as problem:
        print(f"shoplist-server cluster: cannot make the keys in {keys}: {problem}", file=sys.stderr)
        return 1
    key_of = {name: pair.public for name, pair in pairs.items()}
    seeds = [
        with_key(endpoint, key_of.get(node_id, ""))
        for node_id, (endpoint, _) in zip(node_ids, node_urls, strict=True)
    ]
    proxy_entries = [
        with_key(endpoint, key_of.get(name, ""))
        for name, (endpoint, _) in zip(proxy_ids, proxy_urls, strict=True)
    ]
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    children: list[subprocess.Popen[bytes]] = []
    node_info = []
    published: Path | None = None
    ready_line = ""
    try:
        for node_id, (endpoint, publish) in zip(node_ids, node_urls, strict=True):
            command = node_command(node_id, endpoint, publish, data / node_id, seeds, log_level, keys)
            children.append(subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL))
            node_info.append(
                {
                    "id": node_id,
                    "pid": children[-1].pid,
                    "endpoint": endpoint,
                    "publish": publish,
                    "key": key_of.get(node_id, ""),
                }
            )
        for proxy_id, (endpoint, publish) in zip(proxy_ids, proxy_urls, strict=True):
            options = security_options(proxy_id, keys)
            command = [
                *server_program(),
                "--log-level",
                log_level,
                "proxy",
                "--id",
                proxy_id,
                "--bind",
                endpoint,
                "--publish",
                publish,
                "--seeds",
                ",".join(seeds),
                *(options[:2] if keys else options),  # a proxy needs no members file
            ]
            children.append(subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL))
        if not _wait_ready(proxy_entries, node_ids, stop, children):
            return 1
        ready_line = json.dumps({"proxies": proxy_entries, "nodes": node_info})
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
