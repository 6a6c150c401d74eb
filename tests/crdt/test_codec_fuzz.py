"""Fuzzing the CRDT codec: whatever the bytes, decoding returns a valid list that re-encodes to the same
bytes, or raises DecodeError; never another exception. Some inputs decode but re-encode differently, by
design: msgpack that spends more bytes than needed on a value, entries in another order than the encoder
writes them (items, register writes, counter entries, replica table), and format version 1. They decode
to the same state as the canonical bytes, and nothing keeps received bytes as a replica's copy without
re-encoding them (storage and digests use the re-encoded parts), so they are harmless."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crdt import DecodeError, ShoppingList
from tests.crdt.laws import histories
from tests.crdt.specs import SHOPPING_LIST
from tests.hostile import VALUES, deep_msgpack, fuzzing, mutations, packed


def decoded_or_rejected(data: Any) -> ShoppingList | None:
    """Return the list `data` decodes to, or None when the codec rejects it with its own error."""
    try:
        return ShoppingList.from_bytes(data)
    except DecodeError as problem:
        assert str(problem)
        return None


def assert_canonical(decoded: ShoppingList, data: bytes) -> None:
    """A decoded list is usable (it merges both ways with another list), and its encoding decodes to the
    same state and re-encodes to itself."""
    decoded.items()
    decoded.entries()
    other = ShoppingList("other").add_item("Milk", 2)
    other.set_title("Other")
    decoded.copy().merge(other)
    other.merge(decoded)
    assert other.copy() == other
    again = decoded.to_bytes()
    assert ShoppingList.from_bytes(again) == decoded
    assert ShoppingList.from_bytes(again).to_bytes() == again


states = histories(SHOPPING_LIST).map(lambda history: history[0][0])


@fuzzing(60)
@given(state=states)
def test_a_valid_encoding_of_a_random_state_decodes_and_re_encodes_to_the_same_bytes(
    state: ShoppingList,
) -> None:
    encoded = state.to_bytes()
    decoded = ShoppingList.from_bytes(encoded)
    assert decoded == state
    assert decoded.to_bytes() == encoded


@fuzzing(100)
@given(data=st.data())
def test_a_mutated_encoding_decodes_to_a_canonical_list_or_raises_decode_error(data: st.DataObject) -> None:
    encoded = data.draw(states).to_bytes()
    mutated = data.draw(mutations(encoded))
    decoded = decoded_or_rejected(mutated)
    if decoded is not None:
        assert_canonical(decoded, mutated)


@given(data=st.binary(max_size=400))
def test_random_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    decoded = decoded_or_rejected(data)
    if decoded is not None:
        assert_canonical(decoded, data)


@fuzzing(60)
@given(value=VALUES)
def test_any_msgpack_value_in_any_field_is_rejected_or_decodes(value: Any) -> None:
    good = [["A"], [[0, 3], []], [0, 1, 1, "t"], [["milk", [0, 2]]]]
    for position in range(6):
        fields: list[Any] = ["SL", 2, *good]
        fields[position] = value
        decoded = decoded_or_rejected(packed(fields))
        if decoded is not None:
            assert_canonical(decoded, packed(fields))


@fuzzing(60)
@given(data=st.data())
def test_mutated_header_and_item_records_assemble_or_raise_decode_error(data: st.DataObject) -> None:
    state = data.draw(states)
    header = state.header_bytes()
    records = [record for key in sorted(state.item_keys()) if (record := state.item_bytes(key))]
    if data.draw(st.booleans()) or not records:
        header = data.draw(mutations(header))
    else:
        index = data.draw(st.integers(0, len(records) - 1))
        records[index] = data.draw(mutations(records[index]))
    try:
        assembled = ShoppingList.from_parts(header, records)
    except DecodeError:
        return
    assert_canonical(assembled, assembled.to_bytes())


def merged_as_stored(rows: dict[str, bytes], header: bytes, delta: ShoppingList) -> ShoppingList:
    """Merge `delta` into the list stored as `header` and item `rows` the way a node's storage does
    (only the item records the delta touches are rewritten, in `rows`); return the merged list."""
    current = ShoppingList.from_parts(header, rows.values())
    touched = delta.item_keys() | current._keys_overwritten_by(delta)
    current.merge(delta)
    for key in touched:
        record = current.item_bytes(key)
        if record is None:
            rows.pop(key, None)
        else:
            rows[key] = record
    return current


@fuzzing(100)
@given(data=st.data())
def test_a_mutated_delta_merged_into_a_stored_list_loads_back_as_the_merge(data: st.DataObject) -> None:
    replicas, deltas = data.draw(histories(SHOPPING_LIST))
    stored, sources = replicas[0], [*deltas, *replicas[1:]]
    rows = {key: record for key in stored.item_keys() if (record := stored.item_bytes(key))}
    header = stored.header_bytes()
    for _ in range(data.draw(st.integers(1, 3))):
        delta = decoded_or_rejected(data.draw(mutations(data.draw(st.sampled_from(sources)).to_bytes())))
        if delta is None:
            continue
        merged = merged_as_stored(rows, header, delta)
        header = merged.header_bytes()
        loaded = ShoppingList.from_parts(header, rows.values())
        assert loaded == merged
        assert loaded.to_bytes() == merged.to_bytes()


@pytest.mark.parametrize("depth", [100, 10_000, 1_000_000])
def test_deeply_nested_msgpack_is_rejected_with_decode_error(depth: int) -> None:
    with pytest.raises(DecodeError):
        ShoppingList.from_bytes(deep_msgpack(depth))
    with pytest.raises(DecodeError):
        ShoppingList.from_parts(deep_msgpack(depth), [deep_msgpack(depth)])


@pytest.mark.parametrize("wrong", [None, 3, "text", ["SL"], {"SL": 1}, bytearray(b"\x90")])
def test_a_value_that_is_not_bytes_is_rejected_with_decode_error(wrong: Any) -> None:
    with pytest.raises(DecodeError):
        ShoppingList.from_bytes(wrong)


def test_msgpack_in_a_longer_form_decodes_to_the_same_list() -> None:
    state = ShoppingList("A")
    state.add_item("Milk", 2)
    encoded = state.to_bytes()
    assert encoded[:5] == bytes([0x96, 0xA2]) + b"SL" + bytes([0x02])
    wide = encoded[:4] + bytes([0xCC, 0x02]) + encoded[5:]  # the version as a one-byte uint
    assert ShoppingList.from_bytes(wide) == state
    assert ShoppingList.from_bytes(wide).to_bytes() == encoded


def test_items_in_another_order_decode_to_the_same_list() -> None:
    state = ShoppingList("A")
    state.add_item("Milk", 2)
    state.add_item("Bread", 1)
    fields = msgpack.unpackb(state.to_bytes())
    fields[5].reverse()
    assert ShoppingList.from_bytes(packed(fields)) == state
    assert ShoppingList.from_bytes(packed(fields)).to_bytes() == state.to_bytes()


def test_an_item_name_holding_a_nul_character_is_rejected_when_written_and_when_decoded() -> None:
    with pytest.raises(ValueError):
        ShoppingList("A").add_item("Mi\x00lk")
    fields = msgpack.unpackb(ShoppingList("A").add_item("Milk").to_bytes())
    fields[5][0][0][3] = "Mi\x00lk"
    with pytest.raises(DecodeError):
        ShoppingList.from_bytes(packed(fields))


def test_two_writes_sharing_one_dot_are_rejected_instead_of_corrupting_the_dot_index() -> None:
    state = ShoppingList("A")
    state.add_item("Milk")
    state.add_item("Eggs")
    state.set_title("Shop")
    fields = msgpack.unpackb(state.to_bytes())  # items sorted by key: eggs (dot 2), milk (dot 1)
    shared_by_items = msgpack.unpackb(packed(fields))
    shared_by_items[5][0][0][1] = shared_by_items[5][1][0][1]
    shared_by_title = msgpack.unpackb(packed(fields))
    shared_by_title[4][1] = shared_by_title[5][0][0][1]
    for broken in (shared_by_items, shared_by_title):
        with pytest.raises(DecodeError):
            ShoppingList.from_bytes(packed(broken))
