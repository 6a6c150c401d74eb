"""The proxy core: routing to the preference list, failover, retry with backoff, and giving up."""

from __future__ import annotations

from protocol.messages import Kind, Message
from server.membership import MemberRecord, Membership
from server.proxy_core import ProxyCore, ToClient, ToNode
from server.ring import build_ring

NAMES = ["n1", "n2", "n3"]


def _proxy() -> ProxyCore:
    membership = Membership(None, 0.0)
    membership.on_gossip(
        0.0, {name: MemberRecord(name, f"tcp://{name}", f"tcp://{name}/p", 1) for name in NAMES}
    )
    ring = build_ring(NAMES)
    return ProxyCore(membership, lambda: ring, first_timeout=0.5, deadline=4.0)


def _write() -> Message:
    return Message(Kind.WRITE, "client-1", {"list": "groceries"}, b"delta")


def test_a_request_goes_first_to_the_head_of_the_preference_list() -> None:
    proxy = _proxy()
    [effect] = proxy.on_request(0.0, "c", _write())
    assert isinstance(effect, ToNode)
    assert effect.node == build_ring(NAMES).preference_list("groceries", 3)[0]


def test_the_reply_goes_back_with_the_clients_request_id() -> None:
    proxy = _proxy()
    [forward] = proxy.on_request(0.0, "c", _write())
    assert isinstance(forward, ToNode)
    [answer] = proxy.on_reply(0.1, forward.node, Message(Kind.OK, forward.message.request_id))
    assert answer == ToClient("c", Message(Kind.OK, "client-1"))
    assert proxy.in_flight() == 0


def test_a_dropped_connection_moves_the_requests_waiting_on_that_node_on_at_once() -> None:
    proxy = _proxy()
    [first] = proxy.on_request(0.0, "c", _write())
    [other] = proxy.on_request(0.0, "d", Message(Kind.READ, "client-2", {"list": "party"}))
    assert isinstance(first, ToNode) and isinstance(other, ToNode)
    moved = proxy.on_node_lost(0.01, first.node)
    resent = [effect for effect in moved if isinstance(effect, ToNode)]
    assert [effect.node for effect in resent if effect.message.request_id == first.message.request_id] == [
        build_ring(NAMES).successors("groceries")[1]
    ]
    if other.node != first.node:  # a request waiting on another node stays where it is
        assert all(effect.message.request_id != other.message.request_id for effect in resent)
    assert not proxy.membership.is_up(first.node)


def test_an_unreachable_node_fails_over_clockwise_at_once() -> None:
    proxy = _proxy()
    [first] = proxy.on_request(0.0, "c", _write())
    assert isinstance(first, ToNode)
    [second] = proxy.on_unreachable(0.0, first.node, first.message.request_id)
    assert isinstance(second, ToNode)
    assert second.node == build_ring(NAMES).successors("groceries")[1]


def test_a_silent_node_is_retried_elsewhere_after_the_timeout_and_late_replies_are_ignored() -> None:
    proxy = _proxy()
    [first] = proxy.on_request(0.0, "c", _write())
    assert isinstance(first, ToNode)
    assert proxy.tick(0.4) == []
    [second] = proxy.tick(0.5)
    assert isinstance(second, ToNode) and second.node != first.node
    assert proxy.on_reply(0.6, first.node, Message(Kind.OK, first.message.request_id)) == []
    assert len(proxy.on_reply(0.6, second.node, Message(Kind.OK, second.message.request_id))) == 1


def test_when_every_node_is_down_the_client_hears_unavailable_by_the_deadline() -> None:
    proxy = _proxy()
    effects = proxy.on_request(0.0, "c", _write())
    now = 0.0
    answers: list[ToClient] = []
    while not answers and now < 10:
        for effect in effects:
            if isinstance(effect, ToNode):
                effects_next = proxy.on_unreachable(now, effect.node, effect.message.request_id)
                answers += [e for e in effects_next if isinstance(e, ToClient)]
        now += 0.1
        effects = proxy.tick(now)
        answers += [e for e in effects if isinstance(e, ToClient)]
    assert answers and answers[0].message.fields["code"] == "unavailable"
    assert 4.0 <= now < 4.5


def test_a_request_before_any_node_is_known_is_answered_unavailable() -> None:
    proxy = ProxyCore(Membership(None, 0.0), lambda: None)
    [answer] = proxy.on_request(0.0, "c", _write())
    assert isinstance(answer, ToClient) and answer.message.kind is Kind.ERROR
