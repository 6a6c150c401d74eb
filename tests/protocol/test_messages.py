"""The wire codec: round trips, and every malformed input turned into a ProtocolError with a code."""

from __future__ import annotations

import contextlib

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crdt import ShoppingList
from protocol.messages import (
    MAX_BODY_BYTES,
    MAX_HEADER_BYTES,
    ErrorCode,
    Kind,
    Message,
    ProtocolError,
    decode,
    encode,
    error_for_frames,
    topic,
)

LIST_IDS = st.from_regex(r"[A-Za-z0-9_.:-]{1,40}", fullmatch=True)


@given(
    list_id=LIST_IDS, request_id=st.text(min_size=1, max_size=50), body=st.binary(min_size=1, max_size=200)
)
def test_a_write_survives_encoding_unchanged(list_id: str, request_id: str, body: bytes) -> None:
    message = Message(Kind.WRITE, request_id, {"list": list_id}, body)
    assert decode(encode(message)) == message


def test_a_message_without_body_is_one_frame() -> None:
    frames = encode(Message(Kind.READ, "r1", {"list": "groceries"}))
    assert len(frames) == 1
    assert decode(frames).list_id == "groceries"


def _header(**fields: object) -> bytes:
    return msgpack.packb({"v": 1, "type": "read", "id": "x1", "list": "a", **fields})


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        ([], ErrorCode.MALFORMED),
        ([b"\xc1garbage"], ErrorCode.MALFORMED),
        ([msgpack.packb([1, 2])], ErrorCode.MALFORMED),
        ([_header(v=2)], ErrorCode.UNSUPPORTED_VERSION),
        ([_header(v="1")], ErrorCode.MALFORMED),
        ([_header(type="launch")], ErrorCode.MALFORMED),
        ([_header(id="")], ErrorCode.MALFORMED),
        ([_header(list="no spaces allowed")], ErrorCode.MALFORMED),
        ([_header(list="x" * 129)], ErrorCode.MALFORMED),
        ([_header(type="write")], ErrorCode.MALFORMED),
        ([_header(), b"1", b"2"], ErrorCode.MALFORMED),
        ([b"\x00" * (MAX_HEADER_BYTES + 1)], ErrorCode.TOO_LARGE),
        ([_header(type="write"), b"\x00" * (MAX_BODY_BYTES + 1)], ErrorCode.TOO_LARGE),
    ],
)
def test_bad_frames_raise_a_protocol_error_with_the_right_code(frames: list[bytes], code: ErrorCode) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode(frames)
    assert caught.value.code is code


@given(st.lists(st.binary(max_size=100), max_size=3))
def test_random_bytes_never_escape_as_anything_but_a_protocol_error(frames: list[bytes]) -> None:
    with contextlib.suppress(ProtocolError):
        decode(frames)


def test_the_error_reply_reuses_the_request_id_when_it_can_be_read() -> None:
    frames = [_header(v=9)]
    with pytest.raises(ProtocolError) as caught:
        decode(frames)
    answer = error_for_frames(frames, caught.value)
    assert answer.kind is Kind.ERROR
    assert answer.request_id == "x1"
    assert answer.fields["code"] == "unsupported_version"
    assert decode(encode(answer)) == answer


def test_topics_of_two_ids_never_prefix_one_another() -> None:
    assert not topic("abcd").startswith(topic("abc"))


def test_a_real_list_state_travels_as_the_body() -> None:
    shopping = ShoppingList("alice")
    delta = shopping.add_item("Milk", 2)
    message = decode(encode(Message(Kind.WRITE, "w1", {"list": "l1"}, delta.to_bytes())))
    assert ShoppingList.from_bytes(message.body).items() == {"Milk": (2, 0)}
