"""The SWIM gossip messages of server.gossip as protocol messages and back (the fields are checked by
protocol.messages.decode, so turning them into gossip values cannot fail on a decoded message)."""

from __future__ import annotations

from typing import Any

from protocol.messages import GOSSIP, ErrorCode, Kind, Message, ProtocolError
from server.gossip import Ack, Claim, GossipMessage, Ping, PingRequest, Rumour, Sync
from server.membership import MemberRecord


def to_message(message: GossipMessage, sender: str, request_id: str) -> Message:
    """Return `message` from member (or watcher) `sender` as a protocol message."""
    if isinstance(message, Ping):
        fields: dict[str, Any] = {"seq": message.seq, "digest": message.digest, "news": _wire(message.news)}
        return Message(Kind.GOSSIP_PING, request_id, {"from": sender, **fields})
    if isinstance(message, Ack):
        fields = {"seq": message.seq, "about": message.about, "digest": message.digest}
        return Message(Kind.GOSSIP_ACK, request_id, {"from": sender, **fields, "news": _wire(message.news)})
    if isinstance(message, PingRequest):
        fields = {"seq": message.seq, "target": message.target, "news": _wire(message.news)}
        return Message(Kind.GOSSIP_PING_REQ, request_id, {"from": sender, **fields})
    fields = {"members": _wire(message.rumours), "digest": message.digest, "answer": message.answer}
    return Message(Kind.GOSSIP_SYNC, request_id, {"from": sender, **fields})


def from_message(message: Message) -> tuple[str, GossipMessage]:
    """Return (sender, gossip message) carried by a decoded gossip `message`. Raises ProtocolError if
    it is not one (a message built without `decode`)."""
    if message.kind not in GOSSIP:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"{message.kind.value} is not a gossip message")
    fields = message.fields
    sender = str(fields["from"])
    if message.kind is Kind.GOSSIP_PING:
        return sender, Ping(fields["seq"], fields["digest"], _rumours(fields["news"]))
    if message.kind is Kind.GOSSIP_ACK:
        return sender, Ack(fields["seq"], fields["about"], fields["digest"], _rumours(fields["news"]))
    if message.kind is Kind.GOSSIP_PING_REQ:
        return sender, PingRequest(fields["seq"], fields["target"], _rumours(fields["news"]))
    return sender, Sync(_rumours(fields["members"]), fields["digest"], fields["answer"])


def _wire(rumours: tuple[Rumour, ...]) -> list[list[Any]]:
    return [rumour.to_wire() for rumour in rumours]


def _rumours(values: list[list[Any]]) -> tuple[Rumour, ...]:
    """Return the rumours of a checked `news` or `members` field."""
    return tuple(Rumour(MemberRecord(*value[:6]), Claim(value[6])) for value in values)
