"""The simulator against real `shoplist-server` processes, both running the same gossip core: 4 nodes and a
proxy, a fifth node joins through seeds, one is SIGKILLed; every surviving node and the proxy must end
with the same members, the same gossiped claim and local liveness for each, and the same ownership in
both, and within each side every survivor's table must have one digest."""

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
from server.gossip import Claim
from server.keys import load_secret
from server.sim.cluster import ClusterSettings, SimCluster

pytestmark = pytest.mark.timeout(600)

View = dict[str, tuple[str | None, str, float]]
"""member -> (gossiped claim, local liveness, ownership share rounded as status shows it)"""


@pytest.fixture
def real_cluster(tmp_path: Path) -> Iterator[tuple[list[dict[str, Any]], str, Path]]:
    log = (tmp_path / "cluster.log").open("wb")
    command = [sys.executable, "-m", "server.cli", "cluster", "--nodes", "4", "--proxies", "1"]
    process = subprocess.Popen([*command, "--data", str(tmp_path)], stdout=subprocess.PIPE, stderr=log)
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line, f"the cluster exited before it was ready; see {tmp_path / 'cluster.log'}"
    ready = json.loads(line)
    yield ready["nodes"], ready["proxies"][0], tmp_path
    process.send_signal(signal.SIGTERM)
    process.wait(120)
    log.close()


def _real_view(endpoint: str, data: Path) -> tuple[View, str | None]:
    """Return a process's view from its status, and its gossip table's digest."""
    admin = load_secret(data / "keys" / "admin.key_secret")
    info = gather_status(endpoint, 2.0, admin) or {}
    view = {m["id"]: (m["claim"], m["state"], m["ownership"]) for m in info.get("members", [])}
    return view, info.get("gossip", {}).get("digest")


def _wait_for(
    endpoints: dict[str, str], data: Path, done: Any, within: float = 90.0
) -> tuple[dict[str, View], set[str | None]]:
    deadline = time.monotonic() + within
    while True:
        seen = {name: _real_view(endpoint, data) for name, endpoint in endpoints.items()}
        views = {name: view for name, (view, _) in seen.items()}
        digests = {digest for _, digest in seen.values()}
        if (done(views) and len(digests) == 1) or time.monotonic() > deadline:
            return views, digests
        time.sleep(0.5)


def _simulated_views() -> tuple[dict[str, View], SimCluster]:
    cluster = SimCluster(ClusterSettings(seed=3, partitions=256))
    cluster.bootstrap(4, names=["n1", "n2", "n3", "n4"])
    proxy = cluster.add_proxy("proxy")
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
            member: (
                _claim(node.gossip.claim(member)),
                node.membership.liveness(member).value,
                _share(shares, member),
            )
            for member in node.membership.members()
        }
    ring = proxy.core.ring()
    shares = ring.ownership() if ring else {}
    views["proxy"] = {
        member: (
            _claim(proxy.watcher.claim(member)),
            proxy.membership.liveness(member).value,
            _share(shares, member),
        )
        for member in proxy.membership.members()
    }
    return views, cluster


def _claim(claim: Claim | None) -> str | None:
    return claim.name.lower() if claim is not None else None


def _share(shares: dict[str, float], member: str) -> float:
    return round(shares.get(member, 0.0), 4)


def test_the_simulator_and_real_processes_agree_on_a_join_and_a_crash(
    real_cluster: tuple[list[dict[str, Any]], str, Path],
) -> None:
    nodes, proxy, data = real_cluster
    endpoint, publish = (f"tcp://127.0.0.1:{port}" for port in free_ports(2))
    seeds = [with_key(node["endpoint"], node["key"]) for node in nodes]
    # The admin adds the newcomer's key to the members file; the running nodes read it again.
    key = cluster_keys(data / "keys", ["n1", "n2", "n3", "n4", "p1", "n5"])["n5"].public
    joiner = subprocess.Popen(
        node_command("n5", endpoint, publish, data / "n5", seeds, "INFO", data / "keys"),
        stdout=subprocess.DEVNULL,
        stderr=(data / "n5.log").open("wb"),
    )
    everyone = {
        **{node["id"]: with_key(node["endpoint"], node["key"]) for node in nodes},
        "n5": with_key(endpoint, key),
        "proxy": proxy,
    }
    try:
        joined, digests = _wait_for(
            everyone, data, lambda views: all(len(view) == 5 for view in views.values())
        )
        assert all(len(view) == 5 for view in joined.values()), joined
        assert len(digests) == 1, digests
        victim = next(node for node in nodes if node["id"] == "n2")
        os.kill(victim["pid"], signal.SIGKILL)
        survivors = {name: at for name, at in everyone.items() if name != "n2"}
        simulated, cluster = _simulated_views()
        assert cluster.views_agree()
        assert all(view["n2"][:2] == ("dead", "dead") and len(view) == 5 for view in simulated.values())
        assert simulated["n1"]["n5"][:2] == ("alive", "alive")
        real, digests = _wait_for(survivors, data, lambda views: views == simulated)
        assert real == simulated
        assert len(digests) == 1, digests
    finally:
        joiner.send_signal(signal.SIGTERM)
        joiner.wait(60)
