"""Ring maintenance on real clusters (node processes with their own PostgreSQL): anti-entropy repairs a
replica whose store was edited behind its back, a join and a leave under load lose nothing, and a short
run of the fault harness (bench/faults.py) with random, seed-reproducible schedules."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from bench.faults import Client, Result, Runner, run_schedules, running_cluster
from crdt import ShoppingList
from protocol.messages import Kind
from server import postgres
from server.cli import request
from server.ring import build_ring

pytestmark = pytest.mark.timeout(600)


def _eventually(check, within: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def _items(endpoint: str, list_id: str) -> set[str]:
    answer = request(endpoint, Kind.FETCH, 2.0, list=list_id)
    assert answer is not None and answer.kind is Kind.STATE
    return set(ShoppingList.from_bytes(answer.body).items())


def test_anti_entropy_repairs_a_replica_whose_store_was_edited_behind_its_back(tmp_path: Path) -> None:
    args = ["--scrub-every", "0.1"]
    with running_cluster(tmp_path, nodes=3, proxies=1, netns=False, node_args=args) as cluster:
        # Written through a node, not a proxy, so the node stores each list under the id used here (a
        # proxy would store it under the list's storage id).
        coordinator = next(iter(cluster.nodes.values())).endpoint
        lists = [f"home-{number}" for number in range(10)]
        backups = {}
        for list_id in lists:
            state = ShoppingList(f"writer-{list_id}")
            state.add_item("Milk")
            backups[list_id] = state.copy()  # what an old backup of the store holds
            state.add_item("Eggs")
            answer = request(coordinator, Kind.WRITE, 5.0, body=state.to_bytes(), list=list_id)
            assert answer is not None and answer.kind is Kind.OK
        ring = build_ring(cluster.ring_members())
        victim = cluster.nodes[ring.preference_list("home-3", 3)[0]]
        other = next(i for i in lists if i != "home-3" and victim.node_id in ring.preference_list(i, 3))
        for list_id in ("home-3", other):
            _eventually(lambda list_id=list_id: _items(victim.endpoint, list_id) == {"Milk", "Eggs"})
        uri = postgres.uri_of(victim.data / "postgres")
        with psycopg.connect(uri, autocommit=True) as connection:  # behind the node's back
            connection.execute("DELETE FROM items WHERE list_id = 'home-3'")
            connection.execute("DELETE FROM lists WHERE list_id = 'home-3'")
            old = backups[other]  # restore one list from an old backup: it knows nothing of the eggs
            connection.execute("DELETE FROM items WHERE list_id = %s", (other,))
            connection.execute("UPDATE lists SET header = %s WHERE list_id = %s", (old.header_bytes(), other))
            for key in old.item_keys():
                connection.execute(
                    "INSERT INTO items (list_id, key, record) VALUES (%s, %s, %s)",
                    (other, key, old.item_bytes(key)),
                )

        def stored(list_id: str) -> int:
            with psycopg.connect(uri, autocommit=True) as connection:
                row = connection.execute(
                    "SELECT count(*) FROM items WHERE list_id = %s", (list_id,)
                ).fetchone()
                return int(row[0]) if row else 0

        _eventually(lambda: stored("home-3") == 2 and stored(other) == 2)
        for list_id in ("home-3", other):
            assert _items(victim.endpoint, list_id) == {"Milk", "Eggs"}
        # Either side may have done the repair: the victim pulling, or a co-owner pushing to it.
        statuses = [cluster.node_status(node) or {} for node in cluster.nodes.values()]
        assert sum(status.get("anti_entropy", {}).get("lists_repaired", 0) for status in statuses) >= 2


def _acknowledged(clients: list[Client]) -> dict[str, set[str]]:
    acked: dict[str, set[str]] = {}
    for client in clients:
        for outcome in client.outcomes:
            if outcome.acked:
                acked.setdefault(outcome.list_id, set()).add(outcome.item)
    return acked


def test_a_join_and_a_leave_under_load_lose_no_acknowledged_write(tmp_path: Path) -> None:
    with running_cluster(tmp_path, nodes=3, proxies=2, netns=False) as cluster:
        proxies = [proxy.endpoint for proxy in cluster.proxies.values()]
        lists = [f"shared-{number}" for number in range(6)]
        clients = [Client(f"c{i}", proxies[i % 2 :] + proxies[: i % 2], lists, 10.0, i) for i in range(3)]
        for client in clients:
            client.start()
        time.sleep(1.5)
        newcomer = cluster.new_node()
        cluster.start_node(newcomer, join=cluster.seeds[0])
        _eventually(
            lambda: (
                (cluster.node_status(newcomer) or {}).get("handoff", {"joining": True})["joining"] is False
            ),
            90,
        )
        status = cluster.node_status(newcomer)
        assert status is not None and status["handoff"]["lists_held"] > 0
        leaver = cluster.nodes["n1"]
        answer = request(leaver.endpoint, Kind.LEAVE, 3.0)  # as the admin key: the harness set it
        assert answer is not None and answer.kind is Kind.OK
        leaver.leaving = True
        cluster.kill(leaver.process)  # interrupted mid-handoff ...
        cluster.start_node(leaver)  # ... and restarted without being told again: it resumes the leave
        _eventually(lambda: (cluster.node_status(leaver) or {}).get("handoff", {}).get("leaving") is True)
        command = [sys.executable, "-m", "server.cli", "leave", leaver.endpoint, "--timeout", "120"]
        shown = subprocess.run(command, capture_output=True, text=True, timeout=180)
        assert shown.returncode == 0, shown.stderr
        assert "has left the ring" in shown.stdout
        assert leaver.process is not None
        assert leaver.process.wait(30) == 0  # it exited by itself once everything was handed off
        leaver.joined = False
        time.sleep(1.0)
        for client in clients:
            client.stopping.set()
        for client in clients:
            client.join(10)
        acked = _acknowledged(clients)
        assert sum(len(items) for items in acked.values()) > 50
        result = Result(seed=0)
        Runner(cluster).check(result, acked, time.monotonic(), clients)
        assert result.lost == 0 and result.client_misses == 0, result.history
        assert result.converged_after is not None


def test_a_short_fault_harness_run_loses_nothing_and_converges(tmp_path: Path) -> None:
    results, summary = run_schedules([101, 102, 103], root=tmp_path, nodes=5, proxies=2, clients=3)
    assert summary["lost"] == 0 and summary["final_lost"] == 0, [r.history for r in results]
    assert summary["client_misses"] == 0
    assert summary["not_converged"] == 0
    assert summary["acknowledged"] > 0
