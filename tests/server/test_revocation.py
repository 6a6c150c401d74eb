"""Revoking a member's key on a running cluster (`shoplist-server cluster`): the node holding it is refused
and cut off, the others build the ring without it, and the ring keeps serving reads and writes."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import pytest

from crdt import ShoppingList
from protocol.messages import Kind
from server.cli import request
from server.keys import MEMBERS_FILE, load_secret, revoke
from tests.cloud import RunningCluster, running_cluster
from tests.server.handshake import REFUSED, handshake

pytestmark = pytest.mark.timeout(300)


def _member(cluster: RunningCluster, index: int, member_id: str) -> dict[str, Any]:
    answer = request(cluster.node(index), Kind.STATUS, 2.0, identity=cluster.admin)
    members = answer.fields["info"]["members"] if answer is not None else []
    return next((member for member in members if member["id"] == member_id), {})


def _wait_for(condition: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"{what} not reached in {within:g} s"
        time.sleep(0.1)


def test_a_revoked_node_is_refused_cut_off_and_left_out_of_the_ring(tmp_path: Path) -> None:
    with running_cluster(tmp_path, nodes=3, proxies=1) as cluster:
        revoked_pair = load_secret(cluster.data / "keys" / "n3.key_secret")
        assert handshake(cluster.node(0), revoked_pair) not in REFUSED  # a member until now

        key, _ = revoke(cluster.data / "keys" / MEMBERS_FILE, "n3")

        def left_out_everywhere() -> bool:
            seen = [_member(cluster, index, "n3") for index in (0, 1)]
            return all(m.get("revoked") and m["ownership"] == 0 and m["claim"] == "dead" for m in seen)

        _wait_for(left_out_everywhere, 60.0, "n1 and n2 leaving n3 out and declaring it dead")
        assert key == revoked_pair.public
        assert handshake(cluster.node(0), revoked_pair) in REFUSED
        assert handshake(cluster.node(1), revoked_pair) in REFUSED
        for index in (0, 1):  # its old connections still deliver its refutations: they are dropped
            assert _member(cluster, index, "n3")["claim"] == "dead"

        shopping = ShoppingList("tester")
        shopping.set_title("After the revocation")
        written, list_id = shopping.to_bytes(), secrets.token_hex(16)
        proxy = cluster.proxies[0]
        answer = request(proxy, Kind.WRITE, 10.0, body=written, list=list_id)
        assert answer is not None and answer.kind is Kind.OK, answer
        read = request(proxy, Kind.READ, 10.0, list=list_id)
        assert read is not None and read.kind is Kind.STATE
        assert ShoppingList.from_bytes(read.body).title == "After the revocation"
