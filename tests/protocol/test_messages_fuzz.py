"""Fuzzing the wire codec: any frames decode to a message that obeys the protocol's rules and re-encodes
to itself, or raise ProtocolError with a code; the error reply to them can always be built."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.messages import (
    LIST_ID_PATTERN,
    MAX_HEADER_BYTES,
    MAX_ID_LENGTH,
    ErrorCode,
    Kind,
    Message,
    ProtocolError,
    decode,
    encode,
    error_for_frames,
)
from tests.hostile import VALUES, deep_msgpack, fuzzing, mutations, packed

KIND_NAMES = st.sampled_from([kind.value for kind in Kind]) | st.text(max_size=12)
HEADER_KEYS = st.sampled_from(["v", "type", "id", "list", "hint_for", "members", "nodes", "code"])


@st.composite
def hostile_headers(draw: st.DrawFn) -> dict[Any, Any]:
    """A header map: each usual key missing, right, or any value; plus unknown keys."""
    header: dict[Any, Any] = {}
    choices = {
        "v": st.just(1) | VALUES,
        "type": KIND_NAMES | VALUES,
        "id": st.text(min_size=1, max_size=10) | st.text(min_size=129, max_size=140) | VALUES,
        "list": st.from_regex(LIST_ID_PATTERN, fullmatch=True) | VALUES,
    }
    for key, values in choices.items():
        if draw(st.integers(0, 4)):
            header[key] = draw(values)
    header.update(draw(st.dictionaries(HEADER_KEYS | st.text(max_size=5), VALUES, max_size=3)))
    return header


def decoded_or_rejected(frames: list[bytes]) -> Message | None:
    """Return the message `frames` decode to (checked against the protocol's rules), or None when the
    codec rejects them with a ProtocolError; the error reply to rejected frames is checked too."""
    try:
        message = decode(frames)
    except ProtocolError as problem:
        assert isinstance(problem.code, ErrorCode) and str(problem)
        answer = error_for_frames(frames, problem)
        assert answer.kind is Kind.ERROR and 0 < len(answer.request_id) <= MAX_ID_LENGTH
        assert decode(encode(answer)) == answer
        return None
    assert isinstance(message.kind, Kind)
    assert isinstance(message.request_id, str) and 0 < len(message.request_id) <= MAX_ID_LENGTH
    if message.kind in (Kind.WRITE, Kind.READ, Kind.REPLICATE, Kind.FETCH, Kind.CHANGE):
        assert LIST_ID_PATTERN.fullmatch(message.list_id)
    assert encode(decode(encode(message))) == encode(message)  # bytes: a NaN field is not equal to itself
    return message


@given(frames=st.lists(st.binary(max_size=60), max_size=4))
def test_random_frames_decode_or_raise_protocol_error(frames: list[bytes]) -> None:
    decoded_or_rejected(frames)


@fuzzing(100)
@given(header=hostile_headers(), body=st.binary(max_size=30))
def test_hostile_headers_decode_or_raise_protocol_error(header: dict[Any, Any], body: bytes) -> None:
    decoded_or_rejected([packed(header), body] if body else [packed(header)])


@fuzzing(100)
@given(data=st.data())
def test_mutated_valid_messages_decode_or_raise_protocol_error(data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(list(Kind)))
    fields = {"list": "groceries"} if data.draw(st.booleans()) else {}
    message = Message(
        kind, data.draw(st.text(min_size=1, max_size=20)), fields, data.draw(st.binary(max_size=20))
    )
    frames = encode(message)
    which = data.draw(st.integers(0, len(frames) - 1))
    frames[which] = data.draw(mutations(frames[which]))
    decoded_or_rejected(frames)


@pytest.mark.parametrize("depth", [100, 10_000, 1_000_000])
def test_deeply_nested_headers_are_malformed(depth: int) -> None:
    for header in (deep_msgpack(depth), b"\x83\xa1v\x01\xa4type\xa4ping\xa2id" + deep_msgpack(depth)):
        with pytest.raises(ProtocolError) as raised:
            decode([header])
        assert raised.value.code in (ErrorCode.MALFORMED, ErrorCode.TOO_LARGE)
        assert error_for_frames([header], raised.value).request_id == "-"


def test_a_header_just_over_the_limit_is_too_large_and_keeps_no_id() -> None:
    header = packed({"v": 1, "type": "ping", "id": "p1", "pad": "x" * MAX_HEADER_BYTES})
    with pytest.raises(ProtocolError) as raised:
        decode([header])
    assert raised.value.code is ErrorCode.TOO_LARGE
    assert error_for_frames([header], raised.value).request_id == "-"
