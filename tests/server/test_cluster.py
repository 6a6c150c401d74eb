"""A real local cluster (`shoplist-server cluster`: 3 node processes with their own PostgreSQL, 2 proxies)
driven through the client API, with nodes and proxies killed by SIGKILL."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack
import psutil
import pytest
import zmq
import zmq.asyncio
from zmq.utils.monitor import recv_monitor_message

from crdt import ShoppingList
from protocol.endpoints import address_of, split_endpoint, with_key
from protocol.messages import (
    MAX_BODY_BYTES,
    MAX_FRAME_BYTES,
    MAX_HEADER_BYTES,
    Kind,
    Message,
    decode,
    encode,
    topic,
)
from server import sockets
from server.capability import storage_id
from server.cli import gather_status, request
from server.cluster import LOWEST_PORT, ephemeral_range_start, free_ports, node_command
from server.keys import KeyPair, generate, write_key_pair, write_members
from server.sockets import curve_client
from sync_service.client import CloudClient
from sync_service.proxies import parse_endpoints
from tests.cloud import RunningCluster, running_cluster
from tests.server.handshake import REFUSED, handshake

pytestmark = pytest.mark.timeout(600)


Cluster = RunningCluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster
    assert cluster.process.returncode == 0


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 30.0) -> None:
    """Poll `check` until it holds; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


ADMIN: list[KeyPair] = []


def _admin_request(endpoint: str, kind: Kind, timeout: float, body: bytes = b"", **fields: Any) -> Any:
    return request(endpoint, kind, timeout, body, identity=ADMIN[0], **fields)


@pytest.fixture(autouse=True, scope="module")
def _admin_key(cluster: Cluster) -> None:
    ADMIN[:] = [cluster.admin]


def _fetch(endpoint: str, list_id: str) -> ShoppingList | None:
    """Return the node's own copy of the list clients call `list_id`."""
    answer = _admin_request(endpoint, Kind.FETCH, 2.0, list=storage_id(list_id))
    return ShoppingList.from_bytes(answer.body) if answer is not None and answer.kind is Kind.STATE else None


def test_free_ports_are_distinct_and_below_the_range_the_kernel_gives_outgoing_connections() -> None:
    ports = free_ports(10)
    assert len(set(ports)) == 10
    assert all(LOWEST_PORT <= port < ephemeral_range_start() for port in ports)


def test_the_ready_line_names_every_proxy_and_node(cluster: Cluster) -> None:
    assert len(cluster.proxies) == 2
    assert [node["id"] for node in cluster.nodes] == ["n1", "n2", "n3"]
    assert all(psutil.pid_exists(node["pid"]) for node in cluster.nodes)


def test_the_ready_line_pins_each_proxy_key_in_a_form_clients_take(cluster: Cluster) -> None:
    assert parse_endpoints(cluster.proxies) == tuple(cluster.proxies)
    for endpoint in cluster.proxies:
        answer = request(endpoint, Kind.STATUS, 10.0)
        assert answer is not None and answer.fields["info"]["key"] == split_endpoint(endpoint)[1]


def test_a_node_with_an_unknown_key_cannot_join_the_ring(cluster: Cluster, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    intruder, _, _ = write_key_pair(keys, "n9")
    known = {node["id"]: node["key"] for node in cluster.nodes} | {"admin": cluster.admin.public}
    write_members(keys / "members", known)  # it would let the ring in; the ring does not know it
    endpoint, publish = (f"tcp://127.0.0.1:{port}" for port in free_ports(2))
    seeds = [cluster.node(index) for index in range(3)]
    process = subprocess.Popen(
        node_command("n9", endpoint, publish, tmp_path / "n9", seeds, "INFO", keys),
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "n9.log").open("wb"),
    )
    try:
        refusal = f"refused a connection from an unknown key {intruder.public}"

        def refused_by(node_id: str) -> bool:
            lines = (cluster.data / "cluster.log").read_text(errors="replace").splitlines()
            return any(f"node/{node_id} " in line and refusal in line for line in lines)

        deadline = time.monotonic() + 120
        while not all(refused_by(node["id"]) for node in cluster.nodes):  # its gossip reached each one
            assert process.poll() is None and time.monotonic() < deadline, "no node refused the intruder"
            time.sleep(0.2)
        assert handshake(cluster.node(0), intruder) in REFUSED  # its requests get nothing
        for index in range(3):
            info = gather_status(cluster.node(index), 5.0, cluster.admin) or {}
            assert [member["id"] for member in info["members"]] == ["n1", "n2", "n3"]
        own = gather_status(with_key(endpoint, intruder.public), 5.0, cluster.admin) or {}
        assert [member["id"] for member in own["members"]] == ["n9"]  # and it learnt nothing
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)


def test_a_node_refuses_a_plain_text_peer_and_a_client_key_that_is_not_a_member(cluster: Cluster) -> None:
    assert handshake(cluster.node(0), None) in REFUSED
    assert handshake(cluster.node(0), generate()) in REFUSED
    assert handshake(cluster.node(0), cluster.admin) is zmq.Event.HANDSHAKE_SUCCEEDED


def test_status_json_shows_every_member_alive_with_a_fair_share(cluster: Cluster) -> None:
    output = subprocess.run(
        [sys.executable, "-m", "server.cli", "status", "--endpoint", cluster.proxies[0], "--json"],
        env={**os.environ, "SHOPLIST_SERVER_KEY": str(cluster.data / "keys" / "admin.key_secret")},
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
    (
        [
            _packed(
                type="gossip_sync",
                id="g-1",
                members=[["n9", "x", "y", -1, False, "", 0]],
                digest=0,
                answer=True,
            )
        ],
        "malformed",
        "g-1",
    ),
    ([_packed(type="gossip_ping", id="g-2", seq=1, digest=0, news=[])], "malformed", "g-2"),  # no `from`
]
ONLY_FOR = {
    "proxy": [([_packed(type="replicate", id="r-1", list="l"), b"x"], "bad_request", "r-1")],
    "node": [
        ([_packed(type="replicate", id="r-2", list="l"), b"not a list"], "bad_state", "r-2"),
    ],
}


def _dealer(endpoint: str) -> Any:
    address, server_key = split_endpoint(endpoint)
    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    curve_client(socket, ADMIN[0], server_key)
    socket.connect(address)
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
    endpoint = cluster.proxies[0] if target == "proxy" else cluster.node(0)
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
    endpoint = cluster.proxies[0] if target == "proxy" else cluster.node(0)
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
    node = cluster.node(0)
    body = ShoppingList("stranger").add_item("Ghost").to_bytes()
    answer = _admin_request(node, Kind.REPLICATE, 10.0, body=body, list="ghost-hints", hint_for=hint_for)
    assert answer is not None and (answer.kind, answer.fields["code"]) == (Kind.ERROR, code)
    status = _admin_request(node, Kind.STATUS, 10.0)
    assert status is not None and hint_for not in status.fields["info"]["hints"]
    stored = _fetch(node, "ghost-hints")
    assert stored is not None and stored.is_empty()


def test_read_repair_fixes_a_replica_that_missed_a_write(cluster: Cluster) -> None:
    lone = cluster.node(0)
    delta = ShoppingList("alice").add_item("Butter", 3)
    stored = _admin_request(lone, Kind.REPLICATE, 5.0, body=delta.to_bytes(), list=storage_id("repair-me"))
    assert stored is not None and stored.kind is Kind.OK
    others = [cluster.node(index) for index in (1, 2)]
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
        info = gather_status(with_key(node["endpoint"], node["key"]), 2.0, cluster.admin) or {}
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
    others = [cluster.node(index) for index in (0, 1)]
    seeds = [cluster.node(index) for index in range(3)]
    restarted = subprocess.Popen(
        node_command(
            victim["id"],
            victim["endpoint"],
            victim["publish"],
            cluster.data / victim["id"],
            seeds,
            "INFO",
            cluster.data / "keys",
        ),
        stdout=subprocess.DEVNULL,
        stderr=(cluster.data / "restarted.log").open("wb"),
    )
    try:

        async def after_restart() -> None:
            async def handed_back() -> bool:
                return _hints_for(cluster, victim["id"]) == 0

            await eventually(handed_back, within=60)
            state = _fetch(cluster.node(2), "handoff")
            assert state is not None
            assert set(written) <= set(state.items())
            coordinated = _admin_request(cluster.node(2), Kind.READ, 10.0, list=storage_id("handoff"))
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
        and address_of(doomed) in process.info["cmdline"]
    ]

    async def scenario() -> None:
        client = CloudClient(cluster.proxies, timeout=1.0)
        shopping = ShoppingList("alice")
        await client.write("failover", shopping.add_item("Salt"))
        os.kill(pid, signal.SIGKILL)
        for number in range(20):
            await client.write("failover", shopping.add_item(f"spice {number}"))
        assert client.proxy == address_of(cluster.proxies[1])
        assert len(await client.read("failover")) == 21
        client.close()

    asyncio.run(scenario())


# ----- share codes are capabilities; limits at the proxy -----------------------------------------------
# These use the last proxy: a test above kills the first.


def _reply_bytes(endpoint: str, message: Message) -> list[bytes]:
    """Return the reply to `message` as the frames the proxy sent."""
    socket = _dealer(endpoint)
    try:
        socket.send_multipart(encode(message))
        assert socket.poll(10_000), f"no reply to {message.kind.value}"
        return socket.recv_multipart()  # type: ignore[no-any-return]
    finally:
        socket.close(0)


def _write(endpoint: str, list_id: str, delta: ShoppingList) -> None:
    answer = request(endpoint, Kind.WRITE, 10.0, body=delta.to_bytes(), list=list_id)
    assert answer is not None and answer.kind is Kind.OK, answer


def _read(endpoint: str, list_id: str) -> ShoppingList:
    answer = request(endpoint, Kind.READ, 10.0, list=list_id)
    assert answer is not None and answer.kind is Kind.STATE, answer
    return ShoppingList.from_bytes(answer.body)


def _other_code(list_id: str) -> str:
    return list_id[:-1] + ("0" if list_id[-1] != "0" else "1")


def test_a_wrong_code_or_a_storage_id_gets_the_very_reply_a_list_nobody_wrote_gets(cluster: Cluster) -> None:
    proxy, list_id = cluster.proxies[-1], secrets.token_hex(16)
    _write(proxy, list_id, ShoppingList("owner").add_item("Milk"))
    replies = {
        name: _reply_bytes(proxy, Message(Kind.READ, "same-id", {"list": asked}))
        for name, asked in (
            ("wrong code", _other_code(list_id)),
            ("storage id from a node's database", storage_id(list_id)),
            ("list nobody wrote", secrets.token_hex(16)),
        )
    }
    assert replies["wrong code"] == replies["list nobody wrote"]
    assert replies["storage id from a node's database"] == replies["list nobody wrote"]
    assert decode(replies["wrong code"]).kind is Kind.STATE
    assert "Milk" in _read(proxy, list_id)


def test_a_client_without_the_code_cannot_change_the_list(cluster: Cluster) -> None:
    proxy, list_id = cluster.proxies[-1], secrets.token_hex(16)
    owner = ShoppingList("owner")
    _write(proxy, list_id, owner.add_item("Milk"))
    stranger = ShoppingList("stranger")
    for guess in (storage_id(list_id), _other_code(list_id)):
        _write(proxy, guess, stranger.add_item("Graffiti"))
    _write(proxy, list_id, owner.add_item("Eggs"))  # its W replicas have everything written before
    assert set(_read(proxy, list_id).items()) == {"Milk", "Eggs"}
    for node in cluster.nodes:
        assert "Graffiti" not in (_fetch(node["endpoint"], list_id) or ShoppingList("x"))


def _publish_endpoint(proxy: str) -> str:
    """Return where `proxy` publishes, with the key it serves with there (its request key)."""
    publish = str(request(proxy, Kind.PING, 5.0).fields["publish"])  # type: ignore[union-attr]
    return with_key(address_of(publish), split_endpoint(proxy)[1] or "")


def _curve_socket(kind: int, endpoint: str) -> Any:
    """Return a raw socket of `kind` set up to dial `endpoint` over Curve as a fresh client key."""
    socket = zmq.Context.instance().socket(kind)
    socket.setsockopt(zmq.LINGER, 0)
    return curve_client(socket, generate(), split_endpoint(endpoint)[1])


def _subscriber(publish: str, topics: list[bytes]) -> Any:
    socket = _curve_socket(zmq.SUB, publish)
    socket.connect(address_of(publish))
    for subscription in topics:
        socket.setsockopt(zmq.SUBSCRIBE, subscription)
    return socket


def _changes_until(socket: Any, list_id: str, item: str) -> list[Message]:
    """Return every change `socket` receives up to and including one of `list_id` holding `item`."""
    received: list[Message] = []
    while True:
        assert socket.poll(30_000), f"no change of {list_id} with {item} arrived"
        frames = socket.recv_multipart()
        change = decode(frames[1:])
        assert frames[0] == topic(change.list_id)
        received.append(change)
        if change.list_id == list_id and item in ShoppingList.from_bytes(change.body):
            return received


def _warm_up(proxy: str, canary: str, sockets_: list[Any]) -> None:
    """Write to `canary` until every socket received a change of it: their subscriptions are applied."""
    waiting, number = list(sockets_), 0
    deadline = time.monotonic() + 30
    while waiting:
        assert time.monotonic() < deadline, "subscriptions did not take effect"
        _write(proxy, canary, ShoppingList("canary").add_item(f"warm-up {number}"))
        number += 1
        waiting = [socket for socket in waiting if not socket.poll(500)]
    for socket in sockets_:
        while socket.poll(200):  # drain the warm-up changes still queued
            socket.recv_multipart()


def test_a_subscriber_without_the_code_receives_nothing_of_the_list(cluster: Cluster) -> None:
    proxy = cluster.proxies[-1]
    publish = _publish_endpoint(proxy)
    secret, canary = secrets.token_hex(16), secrets.token_hex(16)
    followed_before = _subscriptions(proxy)
    member = _subscriber(publish, [topic(secret), topic(canary)])
    guesses = [
        b"",
        secret[:6].encode(),
        secret.encode(),
        topic(storage_id(secret)),
        topic(_other_code(secret)),
    ]
    stranger = _subscriber(publish, [*guesses, topic(canary)])
    try:
        _warm_up(proxy, canary, [member, stranger])  # so the stranger's guesses were handled too
        _write(proxy, secret, ShoppingList("owner").add_item("Passport"))
        [*_, change] = _changes_until(member, secret, "Passport")
        assert change.fields == {"list": secret}
        # The proxy handled the secret's change before the member got it; a change written after that
        # reaches the stranger after anything the proxy sent it before (one connection keeps order).
        _write(proxy, canary, ShoppingList("canary").add_item("Last"))
        seen = _changes_until(stranger, canary, "Last")
        assert {change.list_id for change in seen} == {canary}
    finally:
        member.close(0)
        stranger.close(0)

    async def forgotten() -> bool:  # so the next test counts from a settled map
        return _subscriptions(proxy) == followed_before

    asyncio.run(eventually(forgotten))


def test_a_subscription_over_the_publishers_frame_limit_drops_only_that_connection(cluster: Cluster) -> None:
    proxy = cluster.proxies[-1]
    publish = _publish_endpoint(proxy)
    hostile = _curve_socket(zmq.SUB, publish)
    hung_up = hostile.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED)
    try:
        hostile.connect(address_of(publish))
        assert (
            hung_up.poll(60_000) and recv_monitor_message(hung_up)["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED
        )
        hostile.setsockopt(zmq.SUBSCRIBE, b"x" * (sockets.MAX_SUBSCRIPTION_BYTES + 1))
        assert hung_up.poll(60_000), "the proxy should drop a subscriber that sends an oversized frame"
        assert recv_monitor_message(hung_up)["event"] == zmq.EVENT_DISCONNECTED
    finally:
        hostile.disable_monitor()
        hung_up.close(0)
        hostile.close(0)
    assert _answers_ping(proxy)


def _subscriptions(endpoint: str) -> int:
    return int((gather_status(endpoint, 2.0) or {})["subscriptions"])


def test_the_proxy_follows_the_whole_topics_its_subscribers_hold_until_the_last_one_leaves(
    cluster: Cluster,
) -> None:
    proxy = cluster.proxies[-1]
    publish = _publish_endpoint(proxy)
    a, b, c = (secrets.token_hex(16) for _ in range(3))
    base = _subscriptions(proxy)

    async def reaches(count: int) -> bool:
        return _subscriptions(proxy) == base + count

    first = _subscriber(publish, [topic(a), topic(b), b"", a[:4].encode()])
    asyncio.run(eventually(lambda: reaches(2)))
    second = _subscriber(publish, [topic(b), topic(c)])
    asyncio.run(eventually(lambda: reaches(3)))
    first.setsockopt(zmq.UNSUBSCRIBE, topic(a))
    asyncio.run(eventually(lambda: reaches(2)))
    second.close(0)  # b stays: first still follows it
    asyncio.run(eventually(lambda: reaches(1)))
    try:
        _warm_up(proxy, b, [first])
    finally:
        first.close(0)
    asyncio.run(eventually(lambda: reaches(0)))


def test_no_reply_a_client_can_get_names_a_storage_id_or_another_list(cluster: Cluster) -> None:
    proxy, list_id = cluster.proxies[-1], secrets.token_hex(16)
    _write(proxy, list_id, ShoppingList("owner").add_item("Milk"))
    about_the_list = [
        _reply_bytes(proxy, Message(Kind.READ, "r-1", {"list": list_id})),
        _reply_bytes(proxy, Message(Kind.WRITE, "w-1", {"list": list_id}, ShoppingList("x").to_bytes())),
        _reply_bytes(proxy, Message(Kind.WRITE, "b-1", {"list": list_id}, b"not a list")),
    ]
    about_other_things = [
        _reply_bytes(proxy, Message(Kind.PING, "p-1")),
        _reply_bytes(proxy, Message(Kind.STATUS, "s-1")),
        _reply_bytes(proxy, Message(Kind.READ, "o-1", {"list": _other_code(list_id)})),
        _reply_bytes(proxy, Message(Kind.FETCH, "f-1", {"list": list_id})),
        *(_reply_bytes_raw(proxy, frames) for frames, _code, _id in BAD_INPUTS + ONLY_FOR["proxy"]),
    ]
    for frames in about_the_list + about_other_things:
        assert not any(storage_id(list_id).encode() in frame for frame in frames), frames
    for frames in about_other_things:
        assert not any(list_id.encode() in frame for frame in frames), frames


def _reply_bytes_raw(endpoint: str, frames: list[bytes]) -> list[bytes]:
    socket = _dealer(endpoint)
    try:
        socket.send_multipart(frames)
        assert socket.poll(10_000)
        return socket.recv_multipart()  # type: ignore[no-any-return]
    finally:
        socket.close(0)


def test_a_connection_over_its_rate_is_told_so_and_the_proxy_keeps_serving_others(
    cluster: Cluster, tmp_path: Path
) -> None:
    address, publish = (f"tcp://127.0.0.1:{port}" for port in free_ports(2))
    seeds = ",".join(cluster.node(index) for index in range(3))
    command = [sys.executable, "-m", "server.cli", "proxy", "--id", "strict", "--bind", address]
    command += ["--publish", publish, "--seeds", seeds, "--rate", "0.01", "--burst", "3"]
    command += ["--key", str(cluster.data / "keys" / "admin.key_secret")]  # a member key: nodes admit it
    bind = with_key(address, cluster.admin.public)
    with (tmp_path / "strict-proxy.log").open("wb") as log:
        strict = subprocess.Popen(command, stdout=log, stderr=log)
    try:
        assert _answers_ping(bind)
        hostile = _dealer(bind)
        try:
            for number in range(10):
                hostile.send_multipart(encode(Message(Kind.PING, f"burst-{number}")))
            answers = []
            for _ in range(10):
                assert hostile.poll(10_000)
                answers.append(decode(hostile.recv_multipart()))
        finally:
            hostile.close(0)
        assert [answer.kind for answer in answers] == [Kind.PONG] * 3 + [Kind.ERROR] * 7
        assert [answer.request_id for answer in answers] == [f"burst-{number}" for number in range(10)]
        refusal = answers[-1].fields
        assert refusal["code"] == "rate_limited"
        assert "too many requests on this connection" in refusal["message"]
        list_id = secrets.token_hex(16)

        async def served() -> bool:  # each `request` is a fresh connection with a bucket of its own
            answer = request(
                bind, Kind.WRITE, 5.0, body=ShoppingList("o").add_item("Tea").to_bytes(), list=list_id
            )
            return answer is not None and answer.kind is Kind.OK

        asyncio.run(eventually(served))
        assert "Tea" in _read(bind, list_id)
        info = gather_status(bind, 5.0, cluster.admin) or {}
        assert info["rate_limited"] >= 7
    finally:
        strict.send_signal(signal.SIGTERM)
        strict.wait(60)


def test_a_node_past_its_cap_answers_unavailable_at_once_and_keeps_serving(
    cluster: Cluster, tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    own, _, _ = write_key_pair(keys, "n8")
    write_members(keys / "members", {"n8": own.public, "admin": cluster.admin.public})
    address, publish = (f"tcp://127.0.0.1:{port}" for port in free_ports(2))
    command = node_command("n8", address, publish, tmp_path / "n8", [], "INFO", keys)
    process = subprocess.Popen(
        [*command, "--max-store-work", "2"],  # a ring of its own: one node, two replica requests at once
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "n8.log").open("wb"),
    )
    endpoint = with_key(address, own.public)
    try:
        deadline = time.monotonic() + 120
        while not _answers_ping(endpoint):
            assert process.poll() is None and time.monotonic() < deadline, "the node did not start"
        body = ShoppingList("flood").to_bytes()
        flood = 300
        socket = _dealer(endpoint)
        try:
            for n in range(flood):
                list_id = storage_id(f"flood-{n}")
                socket.send_multipart(encode(Message(Kind.REPLICATE, f"f-{n}", {"list": list_id}, body)))
            answers = []
            while len(answers) < flood and socket.poll(30_000):
                answers.append(decode(socket.recv_multipart()))
        finally:
            socket.close(0)
        assert len(answers) == flood  # every request answered, stored or refused
        busy = [answer for answer in answers if answer.kind is Kind.ERROR]
        assert busy, "no request was refused"
        assert all(answer.fields["code"] == "unavailable" for answer in busy)
        assert "n8 is busy: 2 replica requests in flight" in busy[0].fields["message"]
        assert any(answer.kind is Kind.OK for answer in answers)
        assert _answers_ping(endpoint)
        status = gather_status(endpoint, 5.0, cluster.admin) or {}
        assert status["load"]["replica"] == {"limit": 2, "in_flight": 0, "refused": len(busy)}
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
