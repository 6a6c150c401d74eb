"""Gossip messages on the wire: every kind survives encode/decode, and a malformed one is a
ProtocolError (malformed) from decode, whatever field is wrong."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.messages import ErrorCode, ProtocolError, decode, encode
from server.gossip import Ack, Claim, GossipMessage, Ping, PingRequest, Rumour, Sync
from server.gossip_wire import from_message, to_message
from server.membership import MemberRecord

KEY = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
TEXT = st.text(min_size=1, max_size=30)
RECORDS = st.builds(
    MemberRecord, TEXT, TEXT, TEXT, st.integers(0, 2**63 - 1), st.booleans(), st.sampled_from(["", KEY])
)
RUMOURS = st.lists(st.builds(Rumour, RECORDS, st.sampled_from(list(Claim))), max_size=5).map(tuple)
SEQ = st.integers(0, 2**63 - 1)
DIGEST = st.integers(0, 2**64 - 1)
MESSAGES = st.one_of(
    st.builds(Ping, SEQ, DIGEST, RUMOURS),
    st.builds(Ack, SEQ, TEXT, DIGEST, RUMOURS),
    st.builds(PingRequest, SEQ, TEXT, RUMOURS),
    st.builds(Sync, RUMOURS, DIGEST, st.booleans()),
)


@given(MESSAGES, TEXT)
def test_every_gossip_message_survives_the_wire_unchanged(message: GossipMessage, sender: str) -> None:
    decoded = decode(encode(to_message(message, sender, "g1")))
    assert from_message(decoded) == (sender, message)


def _frames(kind: str, **fields: Any) -> list[bytes]:
    return [msgpack.packb({"v": 1, "type": kind, "id": "g1", **fields})]


GOOD_RUMOUR = ["n1", "tcp://a:1", "tcp://a:2", 3, False, "", 0]
PING = {"from": "n2", "seq": 1, "digest": 7, "news": [GOOD_RUMOUR]}


@pytest.mark.parametrize(
    "frames",
    [
        _frames("gossip_ping", **{**PING, "from": ""}),
        _frames("gossip_ping", **{**PING, "seq": -1}),
        _frames("gossip_ping", **{**PING, "seq": 2**63}),
        _frames("gossip_ping", **{**PING, "digest": "7"}),
        _frames("gossip_ping", **{**PING, "news": "none"}),
        _frames("gossip_ping", **{k: v for k, v in PING.items() if k != "news"}),
        _frames("gossip_ping", **{**PING, "news": [GOOD_RUMOUR] * 65}),
        _frames("gossip_ping", **{**PING, "news": [GOOD_RUMOUR[:6]]}),
        _frames("gossip_ping", **{**PING, "news": [[*GOOD_RUMOUR[:3], -1, *GOOD_RUMOUR[4:]]]}),
        _frames("gossip_ping", **{**PING, "news": [[*GOOD_RUMOUR[:4], 0, *GOOD_RUMOUR[5:]]]}),
        _frames("gossip_ping", **{**PING, "news": [[*GOOD_RUMOUR[:5], "short key", 0]]}),
        _frames("gossip_ping", **{**PING, "news": [[*GOOD_RUMOUR[:6], 3]]}),
        _frames("gossip_ping", **{**PING, "news": [["x" * 201, *GOOD_RUMOUR[1:]]]}),
        _frames("gossip_ack", **PING),  # no `about`
        _frames("gossip_ping_req", **{**PING, "target": 5}),
        _frames("gossip_sync", **{"from": "p1", "members": [GOOD_RUMOUR], "digest": 0, "answer": 1}),
        _frames(
            "gossip_sync", **{"from": "p1", "members": [GOOD_RUMOUR] * 1001, "digest": 0, "answer": True}
        ),
    ],
)
def test_a_malformed_gossip_message_is_refused_on_decode(frames: list[bytes]) -> None:
    with pytest.raises(ProtocolError) as raised:
        decode(frames)
    assert raised.value.code in (ErrorCode.MALFORMED, ErrorCode.TOO_LARGE)


def test_a_well_formed_ping_decodes_to_the_core_message() -> None:
    sender, message = from_message(decode(_frames("gossip_ping", **PING)))
    assert sender == "n2"
    assert message == Ping(1, 7, (Rumour(MemberRecord("n1", "tcp://a:1", "tcp://a:2", 3), Claim.ALIVE),))
