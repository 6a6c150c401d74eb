"""A real local cluster (`shoplist-server cluster`: 3 node processes with their own PostgreSQL, 2 proxies)
driven through the client API, with nodes and proxies killed by SIGKILL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import psutil
import pytest
import zmq
import zmq.asyncio

from crdt import ShoppingList
from protocol.messages import MAX_BODY_BYTES, Kind, Message, decode, encode
from server.cli import gather_status, request
from server.cluster import node_command
from sync_service.client import CloudClient

pytestmark = pytest.mark.timeout(600)


@dataclass
class Cluster:
    process: subprocess.Popen[bytes]
    proxies: list[str]
    nodes: list[dict[str, Any]]
    data: Path


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    data = tmp_path_factory.mktemp("cluster")
    log = (data / "cluster.log").open("wb")
    command = [
        sys.executable,
        "-m",
        "server.cli",
        "cluster",
        "--nodes",
        "3",
        "--proxies",
        "2",
        "--data",
        str(data),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log)
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line, f"the cluster exited before it was ready; see {data / 'cluster.log'}"
    ready = json.loads(line)
    yield Cluster(process, ready["proxies"], ready["nodes"], data)
    process.send_signal(signal.SIGTERM)
    assert process.wait(120) == 0
    log.close()


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 30.0) -> None:
    """Poll `check` until it holds; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


def _fetch(endpoint: str, list_id: str) -> ShoppingList | None:
    answer = request(endpoint, Kind.FETCH, 2.0, list=list_id)
    return ShoppingList.from_bytes(answer.body) if answer is not None and answer.kind is Kind.STATE else None


def test_the_ready_line_names_every_proxy_and_node(cluster: Cluster) -> None:
    assert len(cluster.proxies) == 2
    assert [node["id"] for node in cluster.nodes] == ["n1", "n2", "n3"]
    assert all(psutil.pid_exists(node["pid"]) for node in cluster.nodes)


def test_status_json_shows_every_member_alive_with_a_fair_share(cluster: Cluster) -> None:
    output = subprocess.run(
        [sys.executable, "-m", "server.cli", "status", "--endpoint", cluster.proxies[0], "--json"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    info = json.loads(output)
    assert [(m["id"], m["state"]) for m in info["members"]] == [
        ("n1", "alive"),
        ("n2", "alive"),
        ("n3", "alive"),
    ]
    assert sum(m["ownership"] for m in info["members"]) == pytest.approx(1.0, abs=0.01)


def test_writes_through_either_proxy_are_read_back_through_the_other(cluster: Cluster) -> None:
    async def scenario() -> None:
        first, second = CloudClient(cluster.proxies[:1]), CloudClient(cluster.proxies[1:])
        alice, bob = ShoppingList("alice"), ShoppingList("bob")
        await first.write("worked-example", alice.add_item("Milk", 2))
        await first.write("worked-example", alice.add_item("Eggs", 6))
        await second.write("worked-example", bob.add_item("Bread", 1))
        await second.write("worked-example", bob.add_item("Eggs", 12, 6))
        expected = {"Milk": (2, 0), "Bread": (1, 0), "Eggs": (18, 6)}
        assert (await second.read("worked-example")).items() == expected
        assert (await first.read("worked-example")).items() == expected
        first.close()
        second.close()

    asyncio.run(scenario())


def test_a_subscriber_on_one_proxy_receives_changes_written_through_the_other(cluster: Cluster) -> None:
    async def scenario() -> None:
        writer, listener = CloudClient(cluster.proxies[:1]), CloudClient(cluster.proxies[1:])
        received: asyncio.Queue[tuple[str, ShoppingList]] = asyncio.Queue()

        async def listen() -> None:
            async for change in listener.subscribe(["news"]):
                await received.put(change)

        task = asyncio.create_task(listen())
        shopping = ShoppingList("alice")
        deadline = time.monotonic() + 30
        while received.empty():  # the first writes may beat the subscription (zmq slow joiner)
            assert time.monotonic() < deadline, "no change arrived"
            await writer.write("news", shopping.add_item("Coffee"))
            try:
                await asyncio.wait_for(received.get(), 0.5)
                break
            except TimeoutError:
                continue
        await writer.write("news", shopping.add_item("Sugar"))
        list_id, change = await asyncio.wait_for(received.get(), 10)
        assert list_id == "news"
        assert "Sugar" in change or "Coffee" in change
        task.cancel()
        writer.close()
        listener.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("target", ["proxy", "node"])
def test_malformed_and_oversized_messages_get_error_replies_and_the_process_stays_up(
    cluster: Cluster, target: str
) -> None:
    endpoint = cluster.proxies[0] if target == "proxy" else cluster.nodes[0]["endpoint"]
    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(endpoint)
    header = msgpack.packb({"v": 1, "type": "write", "id": "big-1", "list": "l"})
    bad_inputs = [
        ([b"\xc1 not msgpack"], "malformed"),
        ([msgpack.packb({"v": 7, "type": "read", "id": "v-1", "list": "l"})], "unsupported_version"),
        ([msgpack.packb({"v": 1, "type": "read", "id": "l-1", "list": "bad id!"})], "malformed"),
        ([header, b"\x00" * (MAX_BODY_BYTES + 1)], "too_large"),
        ([msgpack.packb({"v": 1, "type": "write", "id": "s-1", "list": "l"}), b"not a list"], "bad_state"),
    ]
    try:
        for frames, code in bad_inputs:
            socket.send_multipart(frames)
            assert socket.poll(10_000), f"no reply to a {code} message"
            answer = decode(socket.recv_multipart())
            assert answer.kind is Kind.ERROR
            assert answer.fields["code"] == code
        socket.send_multipart(encode(Message(Kind.PING, "still-there")))
        assert socket.poll(10_000)
        assert decode(socket.recv_multipart()).kind is Kind.PONG
    finally:
        socket.close(0)


def test_read_repair_fixes_a_replica_that_missed_a_write(cluster: Cluster) -> None:
    lone = cluster.nodes[0]["endpoint"]
    delta = ShoppingList("alice").add_item("Butter", 3)
    stored = request(lone, Kind.REPLICATE, 5.0, body=delta.to_bytes(), list="repair-me")
    assert stored is not None and stored.kind is Kind.OK
    others = [node["endpoint"] for node in cluster.nodes[1:]]
    assert all("Butter" not in (_fetch(endpoint, "repair-me") or ShoppingList("x")) for endpoint in others)

    async def scenario() -> None:
        client = CloudClient(cluster.proxies)
        await client.read("repair-me")  # R = 2 may answer before the one fresh replica; all three are read

        async def repaired() -> bool:
            return all(
                "Butter" in (_fetch(endpoint, "repair-me") or ShoppingList("x")) for endpoint in others
            )

        await eventually(repaired)
        assert "Butter" in await client.read("repair-me")
        client.close()

    asyncio.run(scenario())


def _hints_for(cluster: Cluster, node_id: str) -> int:
    total = 0
    for node in cluster.nodes:
        if node["id"] == node_id:
            continue
        info = gather_status(node["endpoint"], 2.0) or {}
        total += int(info.get("hints", {}).get(node_id, 0))
    return total


def test_a_killed_node_is_written_around_and_gets_its_hints_back_when_it_restarts(cluster: Cluster) -> None:
    victim = cluster.nodes[2]
    shopping = ShoppingList("alice")
    written: list[str] = []

    async def write_many(client: CloudClient, count: int) -> None:
        for _ in range(count):
            name = f"thing {len(written)}"
            await client.write("handoff", shopping.add_item(name))  # raises if a write fails
            written.append(name)

    async def before_restart() -> None:
        client = CloudClient(cluster.proxies)
        await write_many(client, 20)
        os.kill(victim["pid"], signal.SIGKILL)
        await write_many(client, 60)
        client.close()

    asyncio.run(before_restart())
    assert _hints_for(cluster, victim["id"]) > 0
    others = [node["endpoint"] for node in cluster.nodes if node is not victim]
    seeds = [node["endpoint"] for node in cluster.nodes]
    restarted = subprocess.Popen(
        node_command(
            victim["id"], victim["endpoint"], victim["publish"], cluster.data / victim["id"], seeds, "INFO"
        ),
        stdout=subprocess.DEVNULL,
        stderr=(cluster.data / "restarted.log").open("wb"),
    )
    try:

        async def after_restart() -> None:
            async def handed_back() -> bool:
                return _hints_for(cluster, victim["id"]) == 0

            await eventually(handed_back, within=60)
            state = _fetch(victim["endpoint"], "handoff")
            assert state is not None
            assert set(written) <= set(state.items())
            client = CloudClient(cluster.proxies)
            assert set((await client.read("handoff")).items()) == set(written)
            client.close()

        asyncio.run(after_restart())
        assert all(_fetch(endpoint, "handoff") is not None for endpoint in others)
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(60)


def test_a_killed_proxy_leaves_clients_working_through_the_other(cluster: Cluster) -> None:
    doomed = cluster.proxies[0]
    [pid] = [
        process.pid
        for process in psutil.process_iter(["cmdline"])
        if process.info["cmdline"]
        and "proxy" in process.info["cmdline"]
        and doomed in process.info["cmdline"]
    ]

    async def scenario() -> None:
        client = CloudClient(cluster.proxies, timeout=1.0)
        shopping = ShoppingList("alice")
        await client.write("failover", shopping.add_item("Salt"))
        os.kill(pid, signal.SIGKILL)
        for number in range(20):
            await client.write("failover", shopping.add_item(f"spice {number}"))
        assert client.proxy == cluster.proxies[1]
        assert len(await client.read("failover")) == 21
        client.close()

    asyncio.run(scenario())
