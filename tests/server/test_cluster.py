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
from zmq.utils.monitor import recv_monitor_message

from crdt import ShoppingList
from protocol.messages import MAX_BODY_BYTES, MAX_FRAME_BYTES, MAX_HEADER_BYTES, Kind, Message, decode, encode
from server.cli import gather_status, request
from server.cluster import LOWEST_PORT, ephemeral_range_start, free_ports, node_command
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


def test_free_ports_are_distinct_and_below_the_range_the_kernel_gives_outgoing_connections() -> None:
    ports = free_ports(10)
    assert len(set(ports)) == 10
    assert all(LOWEST_PORT <= port < ephemeral_range_start() for port in ports)


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


def _packed(**header: Any) -> bytes:
    return msgpack.packb({"v": 1, **header})  # type: ignore[no-any-return]


BAD_INPUTS: list[tuple[list[bytes], str, str]] = [
    # (frames, the error code expected, the request id the reply must carry)
    ([b"\xc1 not msgpack"], "malformed", "-"),
    ([_packed(type="read", id="f-1", list="l"), b"body", b"one frame too many"], "malformed", "f-1"),
    ([msgpack.packb(["v", 1, "type", "read"])], "malformed", "-"),
    ([_packed(type="nonsense", id="t-1")], "malformed", "t-1"),
    ([_packed(type="read", id="l-1", list="bad id!")], "malformed", "l-1"),
    ([_packed(type="read", id="")], "malformed", "-"),
    ([_packed(type="write", id="w-1", list="l")], "malformed", "w-1"),
    ([msgpack.packb({"v": 7, "type": "read", "id": "v-1", "list": "l"})], "unsupported_version", "v-1"),
    ([msgpack.packb({"v": "1", "type": "read", "id": "s-1", "list": "l"})], "malformed", "s-1"),
    ([_packed(type="ping", id="h-1", padding="x" * (MAX_HEADER_BYTES + 1))], "too_large", "-"),
    ([_packed(type="write", id="big-1", list="l"), b"\x00" * (MAX_BODY_BYTES + 1)], "too_large", "big-1"),
    ([_packed(type="write", id="b-1", list="l"), b"not a list"], "bad_state", "b-1"),
    ([_packed(type="ok", id="o-1")], "bad_request", "o-1"),
]
ONLY_FOR = {
    "proxy": [([_packed(type="replicate", id="r-1", list="l"), b"x"], "bad_request", "r-1")],
    "node": [
        (
            [_packed(type="gossip", id="g-1", members=[["n9", "tcp://x", "tcp://y", -1, 0]])],
            "malformed",
            "g-1",
        ),
        ([_packed(type="replicate", id="r-2", list="l"), b"not a list"], "bad_state", "r-2"),
    ],
}


def _dealer(endpoint: str) -> Any:
    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(endpoint)
    return socket


def _answers_ping(endpoint: str) -> bool:
    socket = _dealer(endpoint)
    try:
        socket.send_multipart(encode(Message(Kind.PING, "still-there")))
        return bool(socket.poll(10_000)) and decode(socket.recv_multipart()).kind is Kind.PONG
    finally:
        socket.close(0)


@pytest.mark.parametrize("target", ["proxy", "node"])
def test_malformed_and_oversized_messages_get_error_replies_and_the_process_stays_up(
    cluster: Cluster, target: str
) -> None:
    endpoint = cluster.proxies[0] if target == "proxy" else cluster.nodes[0]["endpoint"]
    socket = _dealer(endpoint)
    try:
        for frames, code, request_id in BAD_INPUTS + ONLY_FOR[target]:
            socket.send_multipart(frames)
            assert socket.poll(10_000), f"no reply to a {code} message"
            answer = decode(socket.recv_multipart())
            assert (answer.kind, answer.fields["code"], answer.request_id) == (Kind.ERROR, code, request_id)
            assert answer.fields["message"]
        socket.send_multipart(encode(Message(Kind.PING, "still-there")))
        assert socket.poll(10_000)
        assert decode(socket.recv_multipart()).kind is Kind.PONG
    finally:
        socket.close(0)


@pytest.mark.parametrize("target", ["proxy", "node"])
def test_a_frame_over_the_socket_limit_leaves_the_process_serving_others(
    cluster: Cluster, target: str
) -> None:
    endpoint = cluster.proxies[0] if target == "proxy" else cluster.nodes[0]["endpoint"]
    hostile = _dealer(endpoint)
    hung_up = hostile.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    try:
        hostile.send_multipart(
            [_packed(type="write", id="huge-1", list="l"), b"\x00" * (MAX_FRAME_BYTES + 1)]
        )
        assert hung_up.poll(60_000), "the receiver should drop a peer that sends a frame over MAXMSGSIZE"
        assert recv_monitor_message(hung_up)["event"] == zmq.EVENT_DISCONNECTED
    finally:
        hostile.disable_monitor()
        hung_up.close(0)
        hostile.close(0)
    assert _answers_ping(endpoint)


@pytest.mark.parametrize(
    ("hint_for", "code"), [("nobody", "bad_request"), ("", "bad_request"), (7, "malformed")]
)
def test_a_hint_for_a_node_that_is_no_member_is_refused_and_stored_nowhere(
    cluster: Cluster, hint_for: object, code: str
) -> None:
    node = cluster.nodes[0]["endpoint"]
    body = ShoppingList("stranger").add_item("Ghost").to_bytes()
    answer = request(node, Kind.REPLICATE, 10.0, body=body, list="ghost-hints", hint_for=hint_for)
    assert answer is not None and (answer.kind, answer.fields["code"]) == (Kind.ERROR, code)
    status = request(node, Kind.STATUS, 10.0)
    assert status is not None and hint_for not in status.fields["info"]["hints"]
    stored = _fetch(node, "ghost-hints")
    assert stored is not None and stored.is_empty()


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
    written: list[str] = []
    acknowledged_at_kill: list[int] = []

    async def stream(writer: str) -> None:
        """Write new items until 60 more were acknowledged after the kill; any failed write raises."""
        client, shopping = CloudClient(cluster.proxies), ShoppingList(writer)
        number = 0
        while not acknowledged_at_kill or len(written) < acknowledged_at_kill[0] + 60:
            name = f"{writer} thing {number}"
            await client.write("handoff", shopping.add_item(name))
            written.append(name)
            number += 1
        client.close()

    async def kill_mid_stream() -> None:
        async def some_written() -> bool:
            return len(written) >= 20

        await eventually(some_written)
        os.kill(victim["pid"], signal.SIGKILL)  # while the writers have requests in flight
        acknowledged_at_kill.append(len(written))

    async def before_restart() -> None:
        await asyncio.gather(kill_mid_stream(), *(stream(f"writer{index}") for index in range(4)))

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
            coordinated = request(victim["endpoint"], Kind.READ, 10.0, list="handoff")
            assert coordinated is not None and coordinated.kind is Kind.STATE
            assert set(ShoppingList.from_bytes(coordinated.body).items()) == set(written)
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
