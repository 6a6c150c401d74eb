"""Decoding is total: any input either decodes to a valid value or raises DecodeError (a ValueError)."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crdt import DecodeError, GCounter, ORSet, PNCounter, ShoppingList, UnsupportedVersionError
from tests.crdt.laws import histories
from tests.crdt.specs import SHOPPING_LIST

DECODERS = [ShoppingList.from_bytes, GCounter.from_bytes, PNCounter.from_bytes, ORSet.from_bytes]


def sample_list() -> ShoppingList:
    shopping = ShoppingList("A")
    shopping.set_title("Groceries")
    shopping.add_item("Milk", 2, category="dairy")
    shopping.add_item("Eggs", 6, 1)
    shopping.remove_item("Eggs")
    return shopping


def decodes_or_rejects(decoder: Any, data: Any) -> None:
    try:
        decoder(data)
    except DecodeError as error:
        assert str(error)


@pytest.mark.parametrize("decoder", DECODERS, ids=lambda d: d.__qualname__.split(".")[0])
@given(data=st.binary(max_size=300))
def test_random_bytes_are_rejected_with_a_decode_error_only(decoder: Any, data: bytes) -> None:
    decodes_or_rejects(decoder, data)


@given(data=st.data())
def test_every_truncation_of_a_valid_encoding_is_rejected(data: st.DataObject) -> None:
    (replica, _, _), _ = data.draw(histories(SHOPPING_LIST))
    encoded = replica.to_bytes()
    cut = data.draw(st.integers(0, len(encoded) - 1))
    with pytest.raises(DecodeError):
        ShoppingList.from_bytes(encoded[:cut])


@given(data=st.data())
def test_flipped_bytes_decode_to_a_valid_list_or_are_rejected(data: st.DataObject) -> None:
    (replica, _, _), _ = data.draw(histories(SHOPPING_LIST))
    encoded = bytearray(replica.to_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        encoded[data.draw(st.integers(0, len(encoded) - 1))] = data.draw(st.integers(0, 255))
    try:
        decoded = ShoppingList.from_bytes(bytes(encoded))
    except DecodeError:
        return
    decoded.items()  # a list that decodes is usable
    assert ShoppingList.from_bytes(decoded.to_bytes()) == decoded


@given(
    value=st.recursive(
        st.none() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=5), lambda c: st.lists(c, max_size=6)
    )
)
def test_well_formed_msgpack_of_the_wrong_shape_is_rejected(value: Any) -> None:
    for body in (
        [value],
        ["SL", 1, value],
        ["SL", 1, [], value, [], []],
        ["SL", 1, ["A"], [[], []], [], [value]],
    ):
        decodes_or_rejects(ShoppingList.from_bytes, msgpack.packb(body))


def test_equal_states_encode_to_equal_bytes() -> None:
    a, b = sample_list(), ShoppingList("B")
    b.merge(a)
    assert a.to_bytes() == b.to_bytes()


def test_a_newer_format_version_is_rejected_as_unsupported() -> None:
    body = msgpack.unpackb(sample_list().to_bytes())
    body[1] = 99
    with pytest.raises(UnsupportedVersionError, match="version 99"):
        ShoppingList.from_bytes(msgpack.packb(body))


def test_another_type_s_encoding_is_rejected_by_its_tag() -> None:
    with pytest.raises(DecodeError, match="type tag"):
        ShoppingList.from_bytes(GCounter("A").to_bytes())


def test_input_over_the_size_limit_is_rejected_before_parsing() -> None:
    with pytest.raises(DecodeError, match="over the limit"):
        ShoppingList.from_bytes(b"\x90" * (32 * 1024 * 1024 + 1))


def test_deeply_nested_input_is_rejected_without_crashing() -> None:
    with pytest.raises(DecodeError):
        ShoppingList.from_bytes(b"\x91" * 100_000 + b"\xc0")


def test_an_array_header_claiming_billions_of_elements_is_rejected_at_once() -> None:
    with pytest.raises(DecodeError):
        ShoppingList.from_bytes(b"\xdd\xff\xff\xff\xff")


def test_non_bytes_input_is_rejected() -> None:
    with pytest.raises(DecodeError, match="expected bytes"):
        ShoppingList.from_bytes("not bytes")  # type: ignore[arg-type]


def _tampered(change: Any) -> bytes:
    body = msgpack.unpackb(sample_list().to_bytes())
    change(body)
    return msgpack.packb(body)


# The sample encodes as ["SL", 2, replicas, context, title, items], items sorted by key: [0] is the
# removed "eggs" record ["eggs", needed, category, acquired] (a removed item stores its key where a
# present one has its name), [1] is "Milk": [name, needed, category], later empty fields left out.
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: b[4].__setitem__(1, 99), "not covered"),
        (lambda b: b[2].__setitem__(0, "x" * 65), "replica"),
        (lambda b: b[2].append("A"), "repeated replica"),
        (lambda b: b[5].append(b[5][1]), "listed twice"),
        (lambda b: b.__setitem__(3, [[], []]), "not covered"),
        (lambda b: b[5][1].__setitem__(1, [1, 2, 0, 5, 0]), "floor lies above"),
        (lambda b: b[5][1].__setitem__(0, [0, 2, 1, "Milk", 0, 4, 1, "Eggs"]), "agree on one key"),
        (lambda b: b[5][1].__setitem__(0, [0, 9999, 1, "Milk"]), "not covered"),
        (lambda b: b[5][1].__setitem__(0, [7, 2, 1, "Milk"]), "not in the table"),
        (lambda b: b[5][1].__setitem__(0, []), "item key"),
        (lambda b: b[5][0].__setitem__(0, "EGGS"), "canonical"),
        (lambda b: b[5].__setitem__(0, ["eggs"]), "holds no state"),
        (lambda b: b[5][1].__setitem__(1, [0, -1]), "out of range"),
        (lambda b: b[5][1].__setitem__(1, [0, 2**64 - 1]), "out of range"),
        (lambda b: b[5][1].__setitem__(1, [0, 2, 0]), "cut short"),
        (lambda b: b[5][1].__setitem__(1, [1, 2, 0, 0, 0]), "written short"),
        (lambda b: b[5][1].append([]), "trailing empty"),
        (lambda b: b[5][1].extend([[]] * 4), "1 to 6 fields"),
    ],
)
def test_hostile_content_is_rejected_with_a_specific_message(change: Any, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        ShoppingList.from_bytes(_tampered(change))


def test_item_records_must_fit_the_header_s_causal_context() -> None:
    shopping = sample_list()
    record = shopping.item_bytes("milk")
    assert record is not None
    with pytest.raises(DecodeError, match="not covered"):
        ShoppingList.from_parts(ShoppingList("A").header_bytes(), [record])


# Written by the version 1 format: replica "B" merged the sample from "A", added 3 Eggs and set Milk to 1.
VERSION_1_LIST = bytes.fromhex(
    "96a2534c0192a141a1429294000401029094000101a947726f6365726965739297c094010101a4456767739090909a00"
    "06000600010300000095000100010097c094010202a44d696c6b94000301a5646169727990909a000200000001000100"
    "0090"
)
VERSION_1_HEADER = bytes.fromhex("95a253480192a141a1429294000401029094000101a947726f636572696573")
VERSION_1_ITEMS = [
    bytes.fromhex("94a253490197c094000101a4456767739090909a0106000600000300000095010100010092a142a141"),
    bytes.fromhex(
        "94a253490197c094000202a44d696c6b94010301a5646169727990909a010200000000000100009092a142a141"
    ),
]


def _the_version_1_list_rebuilt() -> ShoppingList:
    rebuilt = ShoppingList("B")
    rebuilt.merge(sample_list())
    rebuilt.add_item("Eggs", 3)
    rebuilt.set_item("Milk", needed=1)
    return rebuilt


def test_a_list_written_in_format_version_1_still_decodes_to_the_same_state() -> None:
    decoded = ShoppingList.from_bytes(VERSION_1_LIST)
    assert decoded == _the_version_1_list_rebuilt()
    assert decoded.items() == {"Eggs": (3, 0), "Milk": (1, 0)}
    assert decoded.title == "Groceries"


def test_stored_parts_written_in_format_version_1_still_assemble() -> None:
    assembled = ShoppingList.from_parts(VERSION_1_HEADER, VERSION_1_ITEMS)
    assert assembled == _the_version_1_list_rebuilt()


def test_lists_are_written_in_the_current_format_version() -> None:
    decoded = ShoppingList.from_bytes(VERSION_1_LIST, replica="B")
    assert msgpack.unpackb(decoded.to_bytes())[1] == 2
    assert len(decoded.to_bytes()) < len(VERSION_1_LIST)
