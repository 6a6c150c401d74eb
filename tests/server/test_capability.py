"""Share codes as capabilities, without sockets: storage ids, what nodes and clients see through the
proxy core, and the subscription map behind the proxy's XPUB."""

from __future__ import annotations

import secrets

from hypothesis import given
from hypothesis import strategies as st

from crdt import ShoppingList
from protocol.messages import ErrorCode, Kind, Message, decode, encode, error, topic
from server.capability import (
    Apply,
    Subscriptions,
    storage_id,
    to_client,
    to_storage,
)
from server.membership import MemberRecord, Membership
from server.proxy_core import ProxyCore, ToClient, ToNode
from server.ring import build_ring

NAMES = ["n1", "n2", "n3"]
list_ids = st.from_regex(r"[A-Za-z0-9_.:-]{1,128}", fullmatch=True)


def _proxy() -> ProxyCore:
    membership = Membership(None, 0.0)
    membership.on_gossip(
        0.0, {name: MemberRecord(name, f"tcp://{name}", f"tcp://{name}/p", 1) for name in NAMES}
    )
    ring = build_ring(NAMES)
    return ProxyCore(membership, lambda: ring)


def _change(storage: str, item: str = "Milk") -> list[bytes]:
    delta = ShoppingList("writer").add_item(item)
    return [topic(storage), *encode(Message(Kind.CHANGE, "-", {"list": storage}, delta.to_bytes()))]


def _subscribe(list_id: str) -> bytes:
    return b"\x01" + topic(list_id)


def _unsubscribe(list_id: str) -> bytes:
    return b"\x00" + topic(list_id)


@given(list_ids)
def test_a_storage_id_is_128_bits_of_hex_and_never_the_list_id(list_id: str) -> None:
    derived = storage_id(list_id)
    assert len(derived) == 32 and int(derived, 16) >= 0
    assert derived != list_id
    assert storage_id(list_id) == derived  # every proxy derives the same one


def test_a_storage_id_asked_for_as_a_list_id_reaches_another_list() -> None:
    list_id = secrets.token_hex(16)
    assert storage_id(storage_id(list_id)) != storage_id(list_id)


def test_nodes_see_only_the_storage_id_of_a_request() -> None:
    list_id = secrets.token_hex(16)
    [forward] = _proxy().on_request(0.0, "c", to_storage(Message(Kind.READ, "r-1", {"list": list_id})))
    assert isinstance(forward, ToNode)
    assert forward.message.fields == {"list": storage_id(list_id)}
    assert list_id not in str(forward.message)
    assert forward.node == build_ring(NAMES).preference_list(storage_id(list_id), 3)[0]


def test_a_wrong_code_reaches_a_different_storage_id_than_the_right_one() -> None:
    right = secrets.token_hex(16)
    wrong = ("0" if right[0] != "0" else "1") + right[1:]
    assert storage_id(wrong) != storage_id(right)


def test_a_nodes_error_text_reaches_the_client_with_its_own_list_id_instead_of_the_storage_id() -> None:
    list_id = secrets.token_hex(16)
    proxy = _proxy()
    [forward] = proxy.on_request(0.0, "c", to_storage(Message(Kind.WRITE, "w-1", {"list": list_id}, b"x")))
    assert isinstance(forward, ToNode)
    text = f"list {storage_id(list_id)} is broken"
    failed = error(forward.message.request_id, ErrorCode.BAD_STATE, text)
    [answer] = proxy.on_reply(0.1, forward.node, failed)
    assert isinstance(answer, ToClient)
    shown = to_client(answer.message, list_id)
    assert shown == Message(Kind.ERROR, "w-1", {"code": "bad_state", "message": f"list {list_id} is broken"})


def test_fields_a_node_adds_to_a_reply_do_not_reach_the_client() -> None:
    list_id = secrets.token_hex(16)
    answer = Message(Kind.STATE, "r-1", {"list": storage_id(list_id), "node": "n1"}, b"body")
    assert to_client(answer, list_id) == Message(Kind.STATE, "r-1", {}, b"body")


def test_a_valid_subscription_is_applied_and_maps_the_storage_id_to_the_list() -> None:
    subscriptions = Subscriptions()
    list_id = secrets.token_hex(16)
    assert subscriptions.on_message(_subscribe(list_id)) == Apply(True, topic(list_id))
    assert subscriptions.list_for(storage_id(list_id)) == list_id
    assert len(subscriptions) == 1


def test_empty_partial_and_malformed_topics_are_never_applied() -> None:
    subscriptions = Subscriptions()
    list_id = secrets.token_hex(16)
    for data in (
        b"\x01",  # everything
        b"\x01" + list_id[:8].encode(),  # a prefix of a list id: every list that starts with it
        b"\x01" + list_id.encode(),  # no terminator: also a prefix
        b"\x01" + b"bad id!\x00",
        b"\x01" + b"\xff\xfe\x00",
        b"\x01" + b"a" * 129 + b"\x00",
        b"\x02" + topic(list_id),
        b"",
    ):
        assert subscriptions.on_message(data) is None, data
    assert len(subscriptions) == 0


def test_the_map_holds_a_topic_until_its_last_subscription_is_cancelled() -> None:
    subscriptions = Subscriptions()
    list_id = secrets.token_hex(16)
    subscriptions.on_message(_subscribe(list_id))
    subscriptions.on_message(_subscribe(list_id))  # a second connection
    assert subscriptions.on_message(_unsubscribe(list_id)) == Apply(False, topic(list_id))
    assert subscriptions.list_for(storage_id(list_id)) == list_id
    subscriptions.on_message(_unsubscribe(list_id))
    assert subscriptions.list_for(storage_id(list_id)) is None
    assert len(subscriptions) == 0


def test_cancelling_a_topic_nobody_follows_changes_nothing() -> None:
    subscriptions = Subscriptions()
    assert subscriptions.on_message(_unsubscribe(secrets.token_hex(16))) is None
    assert len(subscriptions) == 0


def test_at_the_cap_new_topics_are_refused_and_followed_ones_still_taken() -> None:
    subscriptions = Subscriptions(max_topics=2)
    first, second, third = (secrets.token_hex(16) for _ in range(3))
    subscriptions.on_message(_subscribe(first))
    subscriptions.on_message(_subscribe(second))
    assert subscriptions.on_message(_subscribe(third)) is None
    assert subscriptions.refused == 1
    assert subscriptions.on_message(_subscribe(first)) == Apply(True, topic(first))
    subscriptions.on_message(_unsubscribe(second))
    assert subscriptions.on_message(_subscribe(third)) == Apply(True, topic(third))  # room again


def test_a_change_is_republished_under_the_subscribers_topic_and_list_id() -> None:
    subscriptions = Subscriptions()
    list_id = secrets.token_hex(16)
    subscriptions.on_message(_subscribe(list_id))
    frames = subscriptions.republish(_change(storage_id(list_id)))
    assert frames is not None and frames[0] == topic(list_id)
    change = decode(frames[1:])
    assert (change.kind, change.list_id) == (Kind.CHANGE, list_id)
    assert "Milk" in ShoppingList.from_bytes(change.body)
    assert not any(storage_id(list_id).encode() in frame for frame in frames)


def test_a_change_nobody_here_follows_is_dropped() -> None:
    subscriptions = Subscriptions()
    subscriptions.on_message(_subscribe(secrets.token_hex(16)))
    assert subscriptions.republish(_change(storage_id(secrets.token_hex(16)))) is None


def test_a_subscription_to_a_storage_id_receives_nothing_for_its_list() -> None:
    subscriptions = Subscriptions()
    list_id = secrets.token_hex(16)
    subscriptions.on_message(_subscribe(storage_id(list_id)))  # what a node's database shows
    assert subscriptions.republish(_change(storage_id(list_id))) is None


@given(st.lists(st.binary(max_size=8), max_size=4))
def test_garbage_from_a_node_feed_is_dropped(frames: list[bytes]) -> None:
    subscriptions = Subscriptions()
    subscriptions.on_message(_subscribe("abc"))
    assert subscriptions.republish(frames) is None


@given(st.lists(st.tuples(st.booleans(), st.sampled_from(["a", "b", "c", "d"])), max_size=60))
def test_the_map_follows_exactly_the_topics_with_more_subscriptions_than_cancellations(
    events: list[tuple[bool, str]],
) -> None:
    subscriptions = Subscriptions(max_topics=3)
    held: dict[str, int] = {}
    for subscribe, list_id in events:
        decision = subscriptions.on_message((_subscribe if subscribe else _unsubscribe)(list_id))
        if subscribe and (list_id in held or len(held) < 3):
            held[list_id] = held.get(list_id, 0) + 1
            assert decision == Apply(True, topic(list_id))
        elif not subscribe and list_id in held:
            held[list_id] -= 1
            held = {key: count for key, count in held.items() if count}
            assert decision == Apply(False, topic(list_id))
        else:
            assert decision is None
    assert len(subscriptions) == len(held) <= 3
    assert all(subscriptions.list_for(storage_id(list_id)) == list_id for list_id in held)
