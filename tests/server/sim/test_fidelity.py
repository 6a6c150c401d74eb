"""The simulator against real `shoplist-server` processes: 4 nodes, a fifth joins through seeds, one is
SIGKILLed; every surviving node must end with the same members, liveness and ownership in both."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from protocol.endpoints import with_key
from server.cli import gather_status
from server.cluster import cluster_keys, free_ports, node_command
from server.keys import load_secret
from server.sim.cluster import ClusterSettings, SimCluster

pytestmark = pytest.mark.timeout(600)

View = dict[str, tuple[str, float]]  # member -> (liveness, ownership share rounded as status shows it)


@pytest.fixture
def real_cluster(tmp_path: Path) -> Iterator[tuple[list[dict[str, Any]], Path]]:
    log = (tmp_path / "cluster.log").open("wb")
    command = [sys.executable, "-m", "server.cli", "cluster", "--nodes", "4", "--proxies", "1"]
    process = subprocess.Popen([*command, "--data", str(tmp_path)], stdout=subprocess.PIPE, stderr=log)
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line, f"the cluster exited before it was ready; see {tmp_path / 'cluster.log'}"
    yield json.loads(line)["nodes"], tmp_path
    process.send_signal(signal.SIGTERM)
    process.wait(120)
    log.close()


def _real_view(node: dict[str, Any], data: Path) -> View:
    admin = load_secret(data / "keys" / "admin.key_secret")
    info = gather_status(with_key(node["endpoint"], node["key"]), 2.0, admin) or {}
    return {m["id"]: (m["state"], m["ownership"]) for m in info.get("members", [])}


def _wait_for(nodes: list[dict[str, Any]], data: Path, done: Any, within: float = 90.0) -> dict[str, View]:
    deadline = time.monotonic() + within
    while True:
        views = {node["id"]: _real_view(node, data) for node in nodes}
        if done(views) or time.monotonic() > deadline:
            return views
        time.sleep(0.5)


def _simulated_views() -> dict[str, View]:
    cluster = SimCluster(ClusterSettings(seed=3, partitions=256))
    cluster.bootstrap(4, names=["n1", "n2", "n3", "n4"])
    cluster.queue.run_until(2.0)
    cluster.join("n5", ["n1", "n2", "n3", "n4"])
    cluster.queue.run_until(6.0)
    cluster.crash("n2")
    cluster.queue.run_until(20.0)
    views: dict[str, View] = {}
    for name in cluster.live_nodes():
        node = cluster.nodes[name]
        shares = node.ring.ring.ownership()
        views[name] = {
            member: (node.membership.liveness(member).value, round(shares.get(member, 0.0), 4))
            for member in node.membership.members()
        }
    return views


def test_the_simulator_and_real_processes_agree_on_a_join_and_a_crash(
    real_cluster: tuple[list[dict[str, Any]], Path],
) -> None:
    nodes, data = real_cluster
    endpoint, publish = (f"tcp://127.0.0.1:{port}" for port in free_ports(2))
    seeds = [with_key(node["endpoint"], node["key"]) for node in nodes]
    # The admin adds the newcomer's key to the members file; the running nodes read it again.
    key = cluster_keys(data / "keys", ["n1", "n2", "n3", "n4", "p1", "n5"])["n5"].public
    joiner = subprocess.Popen(
        node_command("n5", endpoint, publish, data / "n5", seeds, "INFO", data / "keys"),
        stdout=subprocess.DEVNULL,
        stderr=(data / "n5.log").open("wb"),
    )
    everyone = [*nodes, {"id": "n5", "endpoint": endpoint, "pid": joiner.pid, "key": key}]
    try:
        joined = _wait_for(everyone, data, lambda views: all(len(view) == 5 for view in views.values()))
        assert all(len(view) == 5 for view in joined.values()), joined
        victim = next(node for node in nodes if node["id"] == "n2")
        os.kill(victim["pid"], signal.SIGKILL)
        survivors = [node for node in everyone if node is not victim]
        simulated = _simulated_views()
        assert all(view["n2"][0] == "dead" and len(view) == 5 for view in simulated.values())
        real = _wait_for(survivors, data, lambda views: views == simulated)
        assert real == simulated
    finally:
        joiner.send_signal(signal.SIGTERM)
        joiner.wait(60)
