"""Fuzzing the sans-io server cores with hostile input: wrong types in every field, huge numbers, deep
nesting, unknown kinds, replies to requests never sent, duplicated and replayed messages. Each core
answers with an error or ignores the input, raises nothing but its documented errors, keeps no state
behind once time passes, and leaves stored lists as they were."""

from __future__ import annotations

import functools
import random
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crdt import ShoppingList
from protocol.messages import GOSSIP, Kind, Message, ProtocolError, decode, encode
from server.anti_entropy import AntiEntropy, AskDigest, Mode, answer_digest
from server.gossip import Ack, Claim, Gossip, Ping, PingRequest, Rumour, Sync, wire_form
from server.gossip_wire import from_message, to_message
from server.membership import MemberRecord, Membership
from server.node_core import Config, Publish, Respond, Send
from server.proxy_core import ProxyCore, ToClient, ToNode
from server.ring import build_ring
from tests.hostile import NASTY, VALUES, fuzzing, mutations, packed
from tests.server.fakes import FakeNetwork, MemoryReplica

NAMES = ["n1", "n2", "n3", "n4", "n5"]
KNOWN = {"groceries": ("Milk", "Eggs"), "hardware": ("Nails",)}
LATER = 1_000.0  # past every deadline


def _hostile_message(kinds: list[Kind]) -> st.SearchStrategy[Message]:
    """Messages of `kinds` as the shell hands them over: whatever survives the wire codec, with any
    header field and body."""

    @st.composite
    def build(draw: st.DrawFn) -> Message:
        fields = draw(
            st.dictionaries(st.sampled_from(["list", "hint_for", "code", "members", "x"]), NASTY, max_size=2)
        )
        if draw(st.booleans()):
            fields["list"] = draw(st.sampled_from(["groceries", "hardware", "other", "a" * 128]))
        header = {"v": 1, "type": draw(st.sampled_from(kinds)).value, "id": draw(REQUEST_IDS), **fields}
        body = draw(st.binary(max_size=40) | st.sampled_from(BODIES))
        try:
            return decode([packed(header), body] if body else [packed(header)])
        except ProtocolError:
            return Message(Kind.PING, "p")  # the shell answers these itself: the core never sees them

    return build()


REQUEST_IDS = st.sampled_from(["c1", "-", "n1:w1:2", "n1:r1:2", "n2:w3:4", "p1", "p2", "p3"]) | st.text(
    min_size=1, max_size=12
)
BODIES = [
    ShoppingList("hostile").add_item("Milk", 1_000_000).to_bytes(),
    b"\x96\xa2SL\x02",
    ShoppingList("empty").to_bytes(),
]


def _filled_network() -> FakeNetwork:
    network = FakeNetwork(NAMES, Config(), seed=1)
    for list_id, names in KNOWN.items():
        delta = ShoppingList("writer")
        for name in names:
            delta.add_item(name)
        network.request("n1", Message(Kind.WRITE, f"fill-{list_id}", {"list": list_id}, delta.to_bytes()))
    network.run()
    return network


def _stored(network: FakeNetwork) -> dict[str, dict[str, bytes]]:
    return {
        name: {list_id: state.to_bytes() for list_id, state in node.lists.items() if list_id in KNOWN}
        for name, node in network.nodes.items()
    }


def _check_effects(effects: list[Any]) -> None:
    for effect in effects:
        assert isinstance(effect, Send | Respond | Publish | ToNode | ToClient)
        if isinstance(effect, Send | Respond | ToNode | ToClient):
            decode(encode(effect.message))  # whatever a core sends, the codec can carry


# ----- node core ---------------------------------------------------------------------------------------

EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["write", "read", "reply", "unreachable", "lost", "tick"]),
        st.sampled_from([*NAMES, "stranger", ""]),
        _hostile_message([Kind.WRITE, Kind.READ]),
        _hostile_message(list(Kind)),
    ),
    max_size=25,
)


@fuzzing(40)
@given(events=EVENTS)
def test_the_node_core_survives_hostile_requests_and_replies_and_keeps_the_lists(
    events: list[tuple[str, str, Message, Message]],
) -> None:
    network = _filled_network()
    before = _stored(network)
    core = network.nodes["n1"].core
    now = network.now
    for event, node, request, answer in events:
        now += 0.01
        if event == "write" and request.kind is Kind.WRITE and request.list_id not in KNOWN:
            effects = core.on_write(now, "client", request)
        elif event == "read" and request.kind is Kind.READ:
            effects = core.on_read(now, "client", request)
        elif event == "reply":
            effects = core.on_reply(now, node, answer)
        elif event == "unreachable":
            effects = core.on_unreachable(now, node, answer.request_id)
        elif event == "lost":
            effects = core.on_node_lost(now, node)
        else:
            effects = core.tick(now)
        _check_effects(effects)
    assert core.tick(now + LATER) is not None
    assert core.pending() == 0
    assert _stored(network) == before


def test_replayed_and_duplicated_replies_do_not_answer_a_write_twice() -> None:
    network = _filled_network()
    network.duplicate = 1.0
    delta = ShoppingList("w").add_item("Tea")
    network.request("n2", Message(Kind.WRITE, "twice", {"list": "groceries"}, delta.to_bytes()))
    network.run()
    core = network.nodes["n2"].core
    for node in NAMES:
        for sub in ("n2:w1:2", "n2:w1:3", "n2:w1:4"):
            _check_effects(core.on_reply(network.now, node, Message(Kind.OK, sub)))
    assert [answer.kind for answer in network.answers if answer.request_id == "twice"] == [Kind.OK]


# ----- proxy core --------------------------------------------------------------------------------------


def _proxy() -> ProxyCore:
    membership = Membership(None, 0.0)
    membership.on_gossip(
        0.0, {name: MemberRecord(name, f"tcp://{name}", f"tcp://{name}/p", 1) for name in NAMES}
    )
    ring = build_ring(NAMES)
    return ProxyCore(membership, lambda: ring, first_timeout=0.5, deadline=4.0)


@fuzzing(50)
@given(
    events=st.lists(
        st.tuples(
            st.sampled_from(["request", "reply", "reply", "unreachable", "lost", "tick"]),
            st.sampled_from([*NAMES, "stranger"]),
            _hostile_message([Kind.WRITE, Kind.READ]),
            _hostile_message(list(Kind)),
        ),
        max_size=30,
    )
)
def test_the_proxy_core_answers_each_client_request_exactly_once_whatever_the_nodes_say(
    events: list[tuple[str, str, Message, Message]],
) -> None:
    proxy = _proxy()
    answers: dict[object, int] = {}
    asked = 0
    now = 0.0

    def count(effects: list[Any]) -> None:
        _check_effects(effects)
        for effect in effects:
            if isinstance(effect, ToClient):
                answers[effect.origin] = answers.get(effect.origin, 0) + 1

    for event, node, request, answer in events:
        now += 0.1
        if event == "request" and request.kind in (Kind.WRITE, Kind.READ):
            asked += 1
            count(proxy.on_request(now, asked, request))
        elif event == "reply":
            count(proxy.on_reply(now, node, answer))
        elif event == "unreachable":
            count(proxy.on_unreachable(now, node, answer.request_id))
        elif event == "lost":
            count(proxy.on_node_lost(now, node))
        else:
            count(proxy.tick(now))
    for step in range(1, 12):
        count(proxy.tick(now + step))
    assert proxy.in_flight() == 0
    assert answers == dict.fromkeys(range(1, asked + 1), 1)


# ----- membership and gossip -----------------------------------------------------------------------------

GOOD_SYNC = Message(
    Kind.GOSSIP_SYNC,
    "g1",
    {
        "from": "n2",
        "members": [
            ["n1", "tcp://a:1", "tcp://a:2", 1, False, "", 0],
            ["n2", "tcp://b:1", "tcp://b:2", 2, True, "", 1],
        ],
        "digest": 7,
        "answer": True,
    },
)


@fuzzing(100)
@given(data=st.data())
def test_a_mutated_gossip_message_is_rejected_on_decode_or_read_safely(data: st.DataObject) -> None:
    frames = encode(GOOD_SYNC)
    header = data.draw(mutations(frames[0]))
    try:
        message = decode([header])
    except ProtocolError:
        return
    if message.kind not in GOSSIP:
        return
    sender, gossip_message = from_message(message)
    _learn_safely(sender, gossip_message)


def _learn_safely(sender: str, message: Any) -> None:
    """Hand `message` to a node's gossip core: its own record stays its own, and what it sends can be sent."""
    me = MemberRecord("n1", "tcp://me:1", "tcp://me:2", 3)
    gossip = Gossip(Membership(me, 0.0), ["n2"], random.Random(0), 0.0)
    for out in [*gossip.on_message(0.0, sender, message), *gossip.tick(1.0)]:
        decode(encode(to_message(out.message, "n1", "x")))
    assert gossip.membership.table["n1"].endpoint == "tcp://me:1"


def test_an_incarnation_no_node_can_reach_is_rejected() -> None:
    for number in (2**63, 2**64 - 1):
        record = ["n1", "tcp://a:1", "tcp://a:2", number, False, "", 0]
        hostile = Message(
            Kind.GOSSIP_SYNC, "g", {"from": "n2", "members": [record], "digest": 1, "answer": False}
        )
        with pytest.raises(ProtocolError):
            decode(encode(hostile))


INCARNATIONS = st.integers(0, 2**63 - 1) | st.sampled_from([0, 1, 2**62, 2**63 - 2, 2**63 - 1])
RECORDS = st.builds(
    MemberRecord,
    st.sampled_from(["n1", "n2", "n3", "ghost"]),
    st.sampled_from(["tcp://a:1", "tcp://b:1", "x" * 200]),
    st.sampled_from(["tcp://a:2", "tcp://b:2"]),
    INCARNATIONS,
    st.booleans(),
)
RUMOURS = st.builds(Rumour, RECORDS, st.sampled_from(list(Claim)))
SEQS = st.integers(0, 2**64 - 1) | st.integers(0, 5)
NEWS = st.lists(RUMOURS, max_size=4).map(tuple)
GOSSIP_MESSAGES = st.one_of(
    st.builds(Ping, SEQS, SEQS, NEWS),
    st.builds(Ack, SEQS, st.sampled_from(["n1", "n2", "n3", "ghost"]), SEQS, NEWS),
    st.builds(PingRequest, SEQS, st.sampled_from(["n1", "n2", "ghost"]), NEWS),
    st.builds(Sync, NEWS, SEQS, st.booleans()),
)


@fuzzing(80)
@given(
    events=st.lists(
        st.tuples(st.sampled_from(["n2", "n3", "ghost", "n1"]), GOSSIP_MESSAGES, st.floats(0, 0.5)),
        max_size=30,
    )
)
def test_the_gossip_core_survives_hostile_and_replayed_messages(events: list[tuple[str, Any, float]]) -> None:
    records = {
        name: MemberRecord(name, f"tcp://{name}:1", f"tcp://{name}:2", 1) for name in ("n1", "n2", "n3")
    }
    membership = Membership(records["n1"], 0.0)
    gossip = Gossip(membership, ["n2"], random.Random(0), 0.0)
    gossip.on_message(0.0, "n2", Sync(tuple(Rumour(r, Claim.ALIVE) for r in records.values()), 0, False))
    now = 0.0
    for sender, message, wait in events:
        now += wait
        for out in [
            *gossip.on_message(now, sender, message),
            *gossip.on_message(now, sender, message),
            *gossip.tick(now),
        ]:
            msgpack.packb(wire_form(out.message))  # whatever it sends can be sent
    assert gossip.claim("n1") is Claim.ALIVE
    digest = 0
    for rumour in gossip.rumours.values():
        digest ^= rumour.fingerprint
    assert digest == gossip.digest
    assert len(gossip._relays) <= 64


# ----- anti-entropy ------------------------------------------------------------------------------------


@functools.cache
def _replica_with_lists() -> MemoryReplica:
    """One replica holding 30 lists, shared: the cores under test only read its tree."""
    replica = MemoryReplica.empty("a", 16)
    for number in range(30):
        replica.write(f"list-{number}", ShoppingList("w").add_item(f"item-{number}"))
    return replica


@fuzzing(60)
@given(nodes=VALUES | st.lists(st.lists(NASTY | st.integers(-5, 20), min_size=4, max_size=4), max_size=5))
def test_a_hostile_digest_ask_is_answered_or_rejected_with_value_error(nodes: Any) -> None:
    replica = _replica_with_lists()
    try:
        fields = answer_digest(replica.tree, nodes)
    except ValueError:
        return
    decode(encode(Message(Kind.DIGEST_REPLY, "d", fields)))


REPLY_PARTS = st.lists(st.lists(NASTY | st.integers(-5, 20), min_size=3, max_size=5), max_size=4) | NASTY


@fuzzing(50)
@given(
    replies=st.lists(
        st.tuples(
            st.integers(0, 3),
            st.dictionaries(st.sampled_from(["expanded", "children", "entries", "more"]), REPLY_PARTS),
        ),
        max_size=6,
    )
)
def test_hostile_and_replayed_digest_replies_fail_the_exchange_or_are_ignored(
    replies: list[tuple[int, dict[str, Any]]],
) -> None:
    replica = _replica_with_lists()
    engine = AntiEntropy(replica.tree, repairs_per_second=1e9, burst=1e9)
    [ask] = engine.tick(0.0, {"b": {partition: Mode.TWO_WAY for partition in range(16)}})
    assert isinstance(ask, AskDigest)
    for exchange, fields in replies:
        for action in engine.on_reply(0.0, exchange or ask.exchange, fields):
            if isinstance(action, AskDigest):
                decode(encode(Message(Kind.DIGEST, "d", {"nodes": action.nodes})))
            else:
                decode(encode(Message(Kind.FETCH, "f", {"list": action.list_id})))
    engine.tick(LATER, {})
    assert engine.active() <= 1


def test_a_digest_reply_to_an_ask_never_sent_is_ignored() -> None:
    replica = _replica_with_lists()
    engine = AntiEntropy(replica.tree, repairs_per_second=1e9, burst=1e9)
    [ask] = engine.tick(0.0, {"b": {0: Mode.TWO_WAY}})
    reply = answer_digest(MemoryReplica.empty("b", 16).tree, ask.nodes)
    engine.on_reply(0.0, ask.exchange, reply)
    assert engine.on_reply(0.0, ask.exchange, reply) == []
    assert engine.on_reply(0.0, ask.exchange + 1, reply) == []


@pytest.mark.parametrize(
    "fields",
    [
        {"expanded": [[0, 2**70, 0]], "children": [], "entries": [], "more": []},
        {"expanded": [], "children": [[0, 1, 0, float("inf")]], "entries": [], "more": []},
        {"expanded": [[0, 9, 2**40]], "children": [], "entries": [], "more": []},
        {"expanded": [], "children": [], "entries": [[0, 0, 0, [["bad list id!", 1]]]], "more": []},
        {"expanded": [], "children": [], "entries": [[0, 0, 0, [[["x"], 1]]]], "more": []},
        {"expanded": [], "children": [], "entries": [], "more": [[0, 1, 2, 3, 4, 5]]},
        {"expanded": [], "children": [], "entries": [], "more": [[0, -1, 0, 0]]},
        {"expanded": "abc", "children": [], "entries": [], "more": []},
        {},
    ],
)
def test_a_digest_reply_that_breaks_the_rules_fails_the_exchange(fields: dict[str, Any]) -> None:
    replica = _replica_with_lists()
    engine = AntiEntropy(replica.tree, repairs_per_second=1e9, burst=1e9)
    [ask] = engine.tick(0.0, {"b": {0: Mode.TWO_WAY}})
    assert engine.on_reply(0.0, ask.exchange, fields) == []
    assert engine.active() == 0
    [finished] = engine.take_finished()
    assert finished.pushed_partitions == {} and finished.synced_partitions == frozenset()
