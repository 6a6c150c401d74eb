"""CurveZMQ between real processes and sockets: a Curve proxy refuses plain-text peers and a plain one
refuses Curve peers, a client pinning the wrong proxy key is told the cloud is unavailable (never hangs),
and a node's ZAP handler admits exactly the member keys and the keys members announce."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import zmq

from protocol.endpoints import split_endpoint, with_key
from protocol.messages import Kind
from server.cli import request
from server.cluster import free_ports
from server.keys import MemberKeys, generate, write_key_pair
from server.membership import MemberRecord
from server.node_core import Config
from server.node_service import NodeService, NodeSettings
from sync_service.client import CloudClient, CloudUnavailable
from tests.server.handshake import REFUSED, handshake
from tests.sync_service.conftest import REPO

pytestmark = pytest.mark.timeout(120)


def _start_proxy(tmp_path: Path, secure: bool) -> tuple[subprocess.Popen[bytes], str, Path]:
    front, publish = (f"tcp://127.0.0.1:{port}" for port in free_ports(2))
    nowhere = with_key(f"tcp://127.0.0.1:{free_ports(1)[0]}", generate().public)
    command = [sys.executable, "-m", "server.cli", "proxy", "--bind", front, "--publish", publish]
    if secure:
        pair, _, secret = write_key_pair(tmp_path / "keys", "p1")
        command += ["--seeds", nowhere, "--key", str(secret)]
        front = with_key(front, pair.public)
    else:
        command += ["--seeds", split_endpoint(nowhere)[0], "--insecure"]
    log = tmp_path / ("secure.log" if secure else "plain.log")
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    deadline = time.monotonic() + 60
    while "serving endpoint" not in log.read_text():
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    return process, front, log


@pytest.fixture(scope="module")
def proxies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A Curve proxy and a plain-text (--insecure) one, both without nodes (they answer ping)."""
    tmp_path = tmp_path_factory.mktemp("proxies")
    secure, secure_front, _ = _start_proxy(tmp_path, secure=True)
    plain, plain_front, plain_log = _start_proxy(tmp_path, secure=False)
    yield {"secure": secure_front, "plain": plain_front, "plain_log": plain_log}
    for process in (secure, plain):
        process.terminate()
        process.wait(30)


def test_a_curve_proxy_answers_a_client_that_pins_its_key_for_requests_and_status(
    proxies: dict[str, Any],
) -> None:
    async def scenario() -> None:
        client = CloudClient([proxies["secure"]], timeout=5.0)
        assert (await client.ping()).kind is Kind.PONG
        client.close()

    asyncio.run(scenario())
    answer = request(proxies["secure"], Kind.STATUS, 10.0)
    assert answer is not None and answer.fields["info"]["key"] == split_endpoint(proxies["secure"])[1]


def test_a_curve_proxy_refuses_a_plain_text_peer(proxies: dict[str, Any]) -> None:
    assert handshake(proxies["secure"], None) in REFUSED


def test_a_plain_text_proxy_refuses_a_curve_peer(proxies: dict[str, Any]) -> None:
    server_key = generate().public
    assert handshake(proxies["plain"], generate(), server_key) in REFUSED


def test_a_proxy_takes_any_client_key_but_only_with_its_own_server_key(proxies: dict[str, Any]) -> None:
    assert handshake(proxies["secure"], generate()) is zmq.Event.HANDSHAKE_SUCCEEDED
    wrong = generate().public
    assert handshake(proxies["secure"], generate(), wrong) in REFUSED


def test_a_client_pinning_the_wrong_proxy_key_is_told_the_cloud_is_unavailable(
    proxies: dict[str, Any],
) -> None:
    impostor = with_key(proxies["secure"], generate().public)

    async def scenario() -> str:
        client = CloudClient([impostor], timeout=30.0, attempts=2)
        try:
            await client.ping()
        except CloudUnavailable as error:
            return str(error)
        finally:
            client.close()
        raise AssertionError("a proxy with another key answered")

    # The refused handshake ends each attempt at once: the 30 s timeout is never waited out.
    message = asyncio.run(asyncio.wait_for(scenario(), 25.0))
    assert "refused the secure handshake" in message and "pinned" in message


def test_an_insecure_proxy_logs_a_loud_warning(proxies: dict[str, Any]) -> None:
    assert "INSECURE: running in plain text" in proxies["plain_log"].read_text()


def _node_service(members: frozenset[str], revoked: frozenset[str] = frozenset()) -> NodeService:
    keys = MemberKeys(members, revoked)
    settings = NodeSettings(
        "n1", "tcp://127.0.0.1:1", "tcp://127.0.0.1:2", (), Config(), keys=generate(), members=keys
    )
    return NodeService(settings, SimpleNamespace())  # type: ignore[arg-type]  # ZAP needs no storage


def test_a_node_admits_member_keys_and_keys_announced_by_members_and_refuses_others() -> None:
    member, newcomer, stranger = generate().public, generate().public, generate().public
    service = _node_service(frozenset({member}))
    try:
        assert service.callback("shoplist", member.encode())
        assert not service.callback("shoplist", newcomer.encode())
        record = MemberRecord("n4", "tcp://127.0.0.1:9", "tcp://127.0.0.1:10", 1, key=newcomer)
        service.membership.on_gossip(0.0, {"n4": record})  # gossip only arrives over admitted links
        assert service.callback("shoplist", newcomer.encode())
        assert not service.callback("shoplist", stranger.encode())
    finally:
        service.context.destroy(0)


@contextmanager
def _node_told_of_a_revoked_member() -> Iterator[tuple[NodeService, str, str]]:
    """Yield a node, a member key, and a revoked key that member n4 (tcp://127.0.0.1:9) announced."""
    member, revoked = generate().public, generate().public
    service = _node_service(frozenset({member}), frozenset({revoked}))
    try:
        record = MemberRecord("n4", "tcp://127.0.0.1:9", "tcp://127.0.0.1:10", 1, key=revoked)
        service.membership.on_gossip(0.0, {"n4": record})
        yield service, member, revoked
    finally:
        service.context.destroy(0)


def test_a_node_refuses_a_revoked_key_even_when_a_member_announces_it_and_never_dials_it() -> None:
    with _node_told_of_a_revoked_member() as (service, member, revoked):
        assert service.callback("shoplist", member.encode())
        assert not service.callback("shoplist", revoked.encode())
        assert service._server_key("tcp://127.0.0.1:9") is None
        assert service.membership.ring_members() == ["n1"]


def test_a_key_taken_off_the_revoked_list_brings_its_member_back_into_the_ring() -> None:
    with _node_told_of_a_revoked_member() as (service, member, revoked):
        service._rebuild_ring()
        assert service.ring.ring.nodes() == ["n1"]

        async def take_back() -> None:
            await service._apply_member_keys(MemberKeys(frozenset({member, revoked})))
            service.links.close()

        asyncio.run(take_back())
        assert service.callback("shoplist", revoked.encode())
        assert service.ring.ring.nodes() == ["n1", "n4"]
