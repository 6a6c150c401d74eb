"""Share codes as capabilities (sans-io): the storage id a proxy derives from a client's list id, the
rewriting of requests and replies between the two, and the bounded map of subscribed topics that lets a
proxy republish the nodes' changes under each client's own topic.

A client names a list by its list id (what its share code spells). Nodes store the list under
`storage_id(list id)`, a one-way BLAKE2b hash, and only ever see that. So the nodes' databases, logs and
change feeds do not hold what a client needs: asking a proxy for a storage id hashes it again and reaches
another, empty list. A wrong code is just another list id, so it gets exactly the answer a list nobody
wrote gets.

Subscriptions arrive on the proxy's XPUB in manual mode (ZMQ_XPUB_MANUAL): libzmq applies none by itself,
so a subscription to an empty or partial topic (which a prefix-matching PUB would feed every list's
changes) is never applied, and nothing reaches it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from protocol.messages import LIST_ID_PATTERN, TOPIC_END, Kind, Message, ProtocolError, decode, encode, topic

PERSONALISATION = b"shoplist:list:v1"
"""BLAKE2b personalisation (16 bytes): storage ids are hashes of this kind and no other."""
MAX_TOPIC_BYTES = 128 + len(TOPIC_END)
DEFAULT_MAX_TOPICS = 100_000
_CLIENT_FIELDS = {Kind.ERROR: ("code", "message")}


def storage_id(list_id: str) -> str:
    """Return the id nodes store `list_id` under: 128 bits of BLAKE2b, as 32 hex digits. No secret key:
    a list id already has 128 random bits, so the hash only has to be one-way, and every proxy of a
    cluster must derive the same id without sharing anything."""
    digest = hashlib.blake2b(list_id.encode(), digest_size=16, person=PERSONALISATION)
    return digest.hexdigest()


def to_storage(request: Message) -> Message:
    """Return the client's WRITE or READ as nodes must see it: the same, naming the storage id."""
    return Message(request.kind, request.request_id, {"list": storage_id(request.list_id)}, request.body)


def to_client(answer: Message, list_id: str) -> Message:
    """Return a reply to a request about `list_id` as its client may see it: only the fields its kind
    has for clients (none but an error's code and text), with the storage id in the text replaced by
    the client's own list id."""
    fields = {
        name: answer.fields[name] for name in _CLIENT_FIELDS.get(answer.kind, ()) if name in answer.fields
    }
    if "message" in fields:
        fields["message"] = str(fields["message"]).replace(storage_id(list_id), list_id)
    return Message(answer.kind, answer.request_id, fields, answer.body)


@dataclass(frozen=True)
class Apply:
    """Tell the XPUB to apply (un)subscription `topic` to the connection it last read from."""

    subscribe: bool
    topic: bytes


class Subscriptions:
    """Which client topics this proxy's subscribers follow, by storage id, with a reference count per
    topic (manual XPUB mode passes every connection's every (un)subscription, and one for each topic
    of a connection that goes away).

    At most `max_topics` distinct topics are followed; a subscription to a new topic beyond that is not
    applied, so its subscriber receives nothing for that list until a restart of the subscription finds
    room (clients re-read their lists then, losing nothing). An XPUB cannot say which connection sent a
    subscription, so the cap is on the total, not per connection.

    The counts are exact for what a real SUB socket sends (each topic once, cancelled at most once). A
    hand-made peer that repeats or cancels topics it never sent can only skew the counts of topics it
    names, that is of lists whose codes it holds: a list it cancels too often may stop being republished
    here until its subscribers resubscribe, one it subscribes twice stays in the map (within the cap).
    """

    def __init__(self, max_topics: int = DEFAULT_MAX_TOPICS) -> None:
        self.max_topics = max_topics
        self.refused = 0
        self._list_of: dict[str, str] = {}  # storage id -> list id (one: the hash has one preimage)
        self._count: dict[str, int] = {}  # list id -> subscriptions applied and not cancelled

    def __len__(self) -> int:
        return len(self._count)

    def on_message(self, data: bytes) -> Apply | None:
        """An (un)subscription message arrived on the XPUB: return what to apply, or None to apply
        nothing (not a whole valid topic, or no room for a new one)."""
        list_id = _list_of_topic(data[1:]) if data[:1] in (b"\x00", b"\x01") else None
        if list_id is None:
            return None
        if data[0] == 1:
            return self._subscribe(list_id, data[1:])
        return self._unsubscribe(list_id, data[1:])

    def list_for(self, storage: str) -> str | None:
        """Return the list id subscribers follow for `storage`, or None if nobody does."""
        return self._list_of.get(storage)

    def republish(self, frames: list[bytes]) -> list[bytes] | None:
        """Return a node's CHANGE (topic, header, body) rewritten for this proxy's subscribers — their
        topic and their list id — or None when nobody here follows that list or the change is bad."""
        if len(frames) < 2:
            return None
        try:
            change = decode(frames[1:])
        except ProtocolError:
            return None
        list_id = self._list_of.get(change.list_id) if change.kind is Kind.CHANGE else None
        if list_id is None:
            return None
        rewritten = Message(Kind.CHANGE, change.request_id, {"list": list_id}, change.body)
        return [topic(list_id), *encode(rewritten)]

    def _subscribe(self, list_id: str, topic_bytes: bytes) -> Apply | None:
        if list_id not in self._count:
            if len(self._count) >= self.max_topics:
                self.refused += 1
                return None
            self._list_of[storage_id(list_id)] = list_id
            self._count[list_id] = 0
        self._count[list_id] += 1
        return Apply(True, topic_bytes)

    def _unsubscribe(self, list_id: str, topic_bytes: bytes) -> Apply | None:
        count = self._count.get(list_id)
        if count is None:
            return None
        if count > 1:
            self._count[list_id] = count - 1
        else:
            del self._count[list_id]
            del self._list_of[storage_id(list_id)]
        return Apply(False, topic_bytes)


def _list_of_topic(topic_bytes: bytes) -> str | None:
    if len(topic_bytes) > MAX_TOPIC_BYTES or not topic_bytes.endswith(TOPIC_END):
        return None
    try:
        list_id = topic_bytes[: -len(TOPIC_END)].decode("ascii")
    except UnicodeDecodeError:
        return None
    return list_id if LIST_ID_PATTERN.fullmatch(list_id) else None
