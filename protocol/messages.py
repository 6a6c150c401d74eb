"""Shoplist wire messages: types, error codes, limits, and the two-frame codec (header + CRDT body)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import msgpack

VERSION = 1
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_FRAME_BYTES = 2 * MAX_BODY_BYTES
"""zmq MAXMSGSIZE: frames up to this size get a TOO_LARGE reply; larger ones drop the connection."""
MAX_ID_LENGTH = 128
LIST_ID_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
TOPIC_END = b"\x00"


class Kind(StrEnum):
    """Every message type. Requests expect exactly one reply with the same request id."""

    WRITE = "write"  # client/proxy -> node: merge the body (a delta) into `list`; reply OK
    READ = "read"  # client/proxy -> node: reply STATE with the merged list
    REPLICATE = "replicate"  # node -> node: store the body durably (as a hint for `hint_for` if set)
    FETCH = "fetch"  # node -> node: reply STATE with this replica's copy
    GOSSIP_PING = "gossip_ping"  # node -> node: are you alive? (digest, news); answered by GOSSIP_ACK
    GOSSIP_ACK = "gossip_ack"  # node -> node: `about` is alive (digest, news)
    GOSSIP_PING_REQ = "gossip_ping_req"  # node -> node: ping `target` for me and relay its ack
    GOSSIP_SYNC = "gossip_sync"  # node/proxy -> node: a member table (or only its digest)
    STATUS = "status"  # anyone -> node/proxy: reply STATUS_REPLY with `info`
    PING = "ping"  # anyone -> node/proxy: reply PONG
    DIGEST = "digest"  # node -> node: `nodes` of a digest tree; reply DIGEST_REPLY (anti-entropy)
    LEAVE = "leave"  # admin -> node: hand every partition off, then exit; reply OK
    OK = "ok"
    STATE = "state"
    STATUS_REPLY = "status_reply"
    PONG = "pong"
    DIGEST_REPLY = "digest_reply"
    ERROR = "error"
    CHANGE = "change"  # published on PUB sockets: a merged delta for `list`


class ErrorCode(StrEnum):
    """Why a request failed, and whose fault it is."""

    MALFORMED = "malformed"  # the sender's fault: not a valid message
    TOO_LARGE = "too_large"  # the sender's fault: over a size limit
    UNSUPPORTED_VERSION = "unsupported_version"  # the sender speaks another protocol version
    BAD_REQUEST = "bad_request"  # the sender's fault: a valid message that makes no sense here
    BAD_STATE = "bad_state"  # the sender's fault: the CRDT body does not decode
    RATE_LIMITED = "rate_limited"  # the sender's: too many requests on one connection; retry later
    UNAVAILABLE = "unavailable"  # the cluster's: too few replicas answered in time
    INTERNAL = "internal"  # a bug or the environment (database) on the replying side


_KINDS = {kind.value: kind for kind in Kind}  # a dict lookup: calling the enum costs more per message
REQUESTS = frozenset(
    {
        Kind.WRITE,
        Kind.READ,
        Kind.REPLICATE,
        Kind.FETCH,
        Kind.STATUS,
        Kind.PING,
        Kind.DIGEST,
        Kind.LEAVE,
    }
)
REPLIES = frozenset({Kind.OK, Kind.STATE, Kind.STATUS_REPLY, Kind.PONG, Kind.ERROR, Kind.DIGEST_REPLY})
GOSSIP = frozenset({Kind.GOSSIP_PING, Kind.GOSSIP_ACK, Kind.GOSSIP_PING_REQ, Kind.GOSSIP_SYNC})
"""One-way messages of the SWIM gossip (server/gossip.py): none expects a reply on its connection."""
MAX_NEWS = 64
MAX_MEMBERS = 1000
MAX_MEMBER_TEXT = 200
KEY_PATTERN = re.compile(r"[0-9A-Za-z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}")
"""A CurveZMQ public key in Z85: 40 characters of the Z85 alphabet."""
_NEEDS_LIST = frozenset({Kind.WRITE, Kind.READ, Kind.REPLICATE, Kind.FETCH, Kind.CHANGE})
_NEEDS_BODY = frozenset({Kind.WRITE, Kind.REPLICATE, Kind.CHANGE})


class ProtocolError(ValueError):
    """An inbound message broke the protocol; `code` says how (the sender's fault)."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Message:
    """One protocol message: a kind, a request id, header fields, and an optional CRDT body."""

    kind: Kind
    request_id: str
    fields: dict[str, Any] = field(default_factory=dict)
    body: bytes = b""

    @property
    def list_id(self) -> str:
        """Return the `list` field (validated on decode for the kinds that carry one)."""
        return str(self.fields.get("list", ""))


def encode(message: Message) -> list[bytes]:
    """Return the frames of `message`: [header] or [header, body]."""
    header = {"v": VERSION, "type": message.kind.value, "id": message.request_id, **message.fields}
    packed: bytes = msgpack.packb(header, use_bin_type=True)
    return [packed, message.body] if message.body else [packed]


def decode(frames: list[bytes]) -> Message:
    """Return the message carried by `frames`. Raises ProtocolError on anything else."""
    if not 1 <= len(frames) <= 2:
        raise ProtocolError(ErrorCode.MALFORMED, f"expected 1 or 2 frames, got {len(frames)}")
    header_bytes = frames[0]
    body = bytes(frames[1]) if len(frames) == 2 else b""
    if len(header_bytes) > MAX_HEADER_BYTES:
        raise ProtocolError(
            ErrorCode.TOO_LARGE, f"header is {len(header_bytes)} bytes, limit {MAX_HEADER_BYTES}"
        )
    if len(body) > MAX_BODY_BYTES:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"body is {len(body)} bytes, limit {MAX_BODY_BYTES}")
    header = _unpack_header(header_bytes)
    kind = _check_kind(header)
    request_id = header.pop("id", None)
    if not isinstance(request_id, str) or not 0 < len(request_id) <= MAX_ID_LENGTH:
        raise ProtocolError(ErrorCode.MALFORMED, "`id` must be a string of 1 to 128 characters")
    if kind in _NEEDS_LIST:
        list_id = header.get("list")
        if not isinstance(list_id, str) or not LIST_ID_PATTERN.fullmatch(list_id):
            raise ProtocolError(ErrorCode.MALFORMED, "`list` must match [A-Za-z0-9_.:-]{1,128}")
    if kind in _NEEDS_BODY and not body:
        raise ProtocolError(ErrorCode.MALFORMED, f"a {kind.value} message needs a body frame")
    if kind in GOSSIP:
        _check_gossip(kind, header)
    return Message(kind, request_id, header, body)


def _unpack_header(header_bytes: bytes) -> dict[str, Any]:
    try:
        header = msgpack.unpackb(
            header_bytes, raw=False, strict_map_key=True, max_bin_len=0, max_ext_len=0, max_array_len=4096
        )
    except Exception as error:  # msgpack raises many types on garbage; all mean "not a header".
        raise ProtocolError(ErrorCode.MALFORMED, f"header is not msgpack: {type(error).__name__}") from None
    if not isinstance(header, dict):
        raise ProtocolError(ErrorCode.MALFORMED, "header must be a msgpack map")
    version = header.pop("v", None)
    if type(version) is not int:
        raise ProtocolError(ErrorCode.MALFORMED, "header needs an integer `v` (protocol version)")
    if version != VERSION:
        raise ProtocolError(
            ErrorCode.UNSUPPORTED_VERSION, f"protocol version {version} is not supported (this side speaks 1)"
        )
    return header


def _check_kind(header: dict[str, Any]) -> Kind:
    name = header.pop("type", None)
    kind = _KINDS.get(name) if isinstance(name, str) else None
    if kind is None:
        raise ProtocolError(ErrorCode.MALFORMED, f"unknown message type {name!r}")
    return kind


def _check_gossip(kind: Kind, header: dict[str, Any]) -> None:
    """Raise ProtocolError unless `header` holds every field of gossip `kind`, each well formed."""
    for name in _GOSSIP_FIELDS[kind]:
        problem = _GOSSIP_CHECKS[name](header.get(name))
        if problem:
            raise ProtocolError(ErrorCode.MALFORMED, f"{kind.value}: `{name}` {problem}")


def _member_id(value: object) -> str:
    ok = isinstance(value, str) and 0 < len(value) <= MAX_MEMBER_TEXT
    return "" if ok else "must be a string of 1 to 200 characters"


def _unsigned(bits: int) -> Callable[[object], str]:
    def check(value: object) -> str:
        ok = type(value) is int and 0 <= value < 2**bits
        return "" if ok else f"must be an integer from 0 to 2**{bits} - 1"

    return check


def _flag(value: object) -> str:
    return "" if type(value) is bool else "must be a boolean"


def _rumours(limit: int) -> Callable[[object], str]:
    def check(value: object) -> str:
        if not isinstance(value, list) or len(value) > limit:
            return f"must be a list of at most {limit} member records"
        for record in value:
            problem = _rumour(record)
            if problem:
                return f"holds a bad member record: {problem}"
        return ""

    return check


def _rumour(value: object) -> str:
    """Check `[node_id, endpoint, publish, incarnation, leaving, key, claim]`; return the problem or ""."""
    if not isinstance(value, list) or len(value) != 7:
        return "a member record is a list of 7 fields"
    node_id, endpoint, publish, incarnation, leaving, key, claim = value
    if any(_member_id(text) for text in (node_id, endpoint, publish)):
        return "id and endpoints must be strings of 1 to 200 characters"
    if _unsigned(63)(incarnation):
        return "the incarnation must be an integer from 0 to 2**63 - 1"
    if _flag(leaving):
        return "the leaving flag must be a boolean"
    if not isinstance(key, str) or (key and not KEY_PATTERN.fullmatch(key)):
        return "the key must be empty or a Z85 CurveZMQ public key (40 characters)"
    if type(claim) is not int or claim not in (0, 1, 2):
        return "the claim must be 0 (alive), 1 (suspect) or 2 (dead)"
    return ""


_GOSSIP_CHECKS: dict[str, Callable[[object], str]] = {
    "from": _member_id,
    "seq": _unsigned(63),
    "digest": _unsigned(64),
    "about": _member_id,
    "target": _member_id,
    "news": _rumours(MAX_NEWS),
    "members": _rumours(MAX_MEMBERS),
    "answer": _flag,
}
_GOSSIP_FIELDS = {
    Kind.GOSSIP_PING: ("from", "seq", "digest", "news"),
    Kind.GOSSIP_ACK: ("from", "seq", "about", "digest", "news"),
    Kind.GOSSIP_PING_REQ: ("from", "seq", "target", "news"),
    Kind.GOSSIP_SYNC: ("from", "members", "digest", "answer"),
}


def reply(request: Message, kind: Kind, body: bytes = b"", **fields: Any) -> Message:
    """Return a reply of `kind` to `request` (same request id)."""
    return Message(kind, request.request_id, fields, body)


def error(request_id: str, code: ErrorCode, text: str) -> Message:
    """Return an ERROR reply carrying `code` and a human-readable `message`."""
    return Message(Kind.ERROR, request_id or "-", {"code": code.value, "message": text[:1000]})


def error_for_frames(frames: list[bytes], problem: ProtocolError) -> Message:
    """Return the ERROR reply to undecodable `frames`, reusing their request id when one can be read."""
    return error(request_id_of(frames), problem.code, str(problem))


def request_id_of(frames: list[bytes]) -> str:
    """Return the request id of `frames` without decoding the rest (for replies to messages that are
    refused unread), or "-" when none can be read."""
    if not frames or len(frames[0]) > MAX_HEADER_BYTES:
        return "-"
    try:
        header = msgpack.unpackb(frames[0], raw=False, max_bin_len=0, max_ext_len=0, max_array_len=4096)
    except Exception:  # already known to be bad; any id we cannot read becomes "-"
        return "-"
    request_id = header.get("id") if isinstance(header, dict) else None
    return request_id if isinstance(request_id, str) and 0 < len(request_id) <= MAX_ID_LENGTH else "-"


def topic(list_id: str) -> bytes:
    """Return the PUB/SUB topic frame for `list_id` (terminated so one id never prefixes another)."""
    return list_id.encode() + TOPIC_END
