"""The binary envelope every CRDT shares: msgpack, a type tag, a format version, hard size limits, and
validation that turns any malformed input into a DecodeError (a ValueError)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn, TypeVar

import msgpack

from crdt.dots import CausalContext, Dot
from crdt.replica import REPLICA_ID_MAX_LENGTH

MAX_ENCODED_BYTES = 32 * 1024 * 1024
MAX_COLLECTION = 1_000_000
MAX_STRING = 4096
MAX_INT = 2**63 - 1

T = TypeVar("T")


class DecodeError(ValueError):
    """The bytes are not a valid encoding of the expected CRDT."""


class UnsupportedVersionError(DecodeError):
    """The bytes carry a format version this code does not read (written by a newer release)."""


def fail(message: str) -> NoReturn:
    """Raise DecodeError with `message`."""
    raise DecodeError(message)


def encode(tag: str, version: int, body: list[Any]) -> bytes:
    """Return the msgpack encoding of `[tag, version, *body]`."""
    return msgpack.packb([tag, version, *body], use_bin_type=True)  # type: ignore[no-any-return]


def decode(data: object, tag: str, version: int, body_length: int) -> list[Any]:
    """Return the body fields of an encoding made by `encode(tag, version, body)`.

    Raises DecodeError on anything else: wrong type, size over the limit, bad msgpack, another tag,
    another number of fields; UnsupportedVersionError on an unknown version.
    """
    return decode_versioned(data, tag, {version: body_length})[1]


def decode_versioned(data: object, tag: str, layouts: Mapping[int, int]) -> tuple[int, list[Any]]:
    """Return (version, body fields) of an encoding of `tag` in any version `layouts` maps to its number
    of body fields. Raises as `decode` does."""
    if not isinstance(data, bytes | bytearray | memoryview):
        fail(f"expected bytes, got {type(data).__name__}")
    if len(data) > MAX_ENCODED_BYTES:
        fail(f"encoding is {len(data)} bytes, over the limit of {MAX_ENCODED_BYTES}")
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_str_len=MAX_STRING * 4,
            max_bin_len=MAX_STRING,
            max_array_len=MAX_COLLECTION,
            max_map_len=MAX_COLLECTION,
            max_ext_len=0,
        )
    except Exception as error:  # msgpack raises a zoo of types on garbage; all mean "not our format".
        raise DecodeError(f"not a valid {tag} encoding: {type(error).__name__}: {error}") from None
    if not isinstance(value, list) or len(value) < 2:
        fail(f"not a {tag} encoding: expected an array [tag, version, ...]")
    if value[0] != tag:
        fail(f"expected type tag {tag!r}, found {value[0]!r}")
    version = value[1]
    if type(version) is not int:
        fail(f"{tag}: the format version must be an integer")
    if version not in layouts:
        readable = ", ".join(str(known) for known in sorted(layouts))
        raise UnsupportedVersionError(
            f"{tag}: format version {version} is not supported (this code reads {readable})"
        )
    if len(value) != 2 + layouts[version]:
        fail(f"{tag} v{version}: expected {layouts[version]} fields, found {len(value) - 2}")
    return version, value[2:]


def guarded(tag: str, build: Callable[[], T]) -> T:
    """Run `build` (which validates decoded fields) and turn any stray error into a DecodeError."""
    try:
        return build()
    except DecodeError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, RecursionError) as error:
        raise DecodeError(f"{tag}: malformed content: {error}") from None


def check_list(value: object, what: str, *, multiple_of: int = 1) -> list[Any]:
    """Return `value` if it is a list whose length is a multiple of `multiple_of`."""
    if not isinstance(value, list):
        fail(f"{what}: expected an array, found {type(value).__name__}")
    if len(value) % multiple_of:
        fail(f"{what}: expected groups of {multiple_of} values, found {len(value)} values")
    return value


def check_int(value: object, what: str, *, minimum: int = 0) -> int:
    """Return `value` if it is an int in [minimum, MAX_INT]."""
    if type(value) is not int:
        fail(f"{what}: expected an integer, found {type(value).__name__}")
    if not minimum <= value <= MAX_INT:
        fail(f"{what}: {value} is out of range")
    return value


def check_str(value: object, what: str, *, max_length: int = MAX_STRING) -> str:
    """Return `value` if it is a str no longer than `max_length`."""
    if not isinstance(value, str):
        fail(f"{what}: expected a string, found {type(value).__name__}")
    if len(value) > max_length:
        fail(f"{what}: {len(value)} characters, over the limit of {max_length}")
    return value


class ReplicaTable:
    """Numbers replica ids while encoding so each id is written once (ids repeat in every dot)."""

    __slots__ = ("_index", "ids")

    def __init__(self) -> None:
        self.ids: list[str] = []
        self._index: dict[str, int] = {}

    def number(self, replica: str) -> int:
        """Return the table index of `replica`, adding it on first use."""
        index = self._index.get(replica)
        if index is None:
            index = self._index[replica] = len(self.ids)
            self.ids.append(replica)
        return index


def read_replica_table(value: object, what: str) -> Sequence[str]:
    """Return a decoded replica table: distinct, valid replica ids."""
    ids = check_list(value, what)
    for replica in ids:
        check_str(replica, f"{what} entry", max_length=REPLICA_ID_MAX_LENGTH)
        if not replica:
            fail(f"{what}: empty replica id")
    if len(set(ids)) != len(ids):
        fail(f"{what}: repeated replica id")
    return ids


def read_replica(table: Sequence[str], index: object, what: str) -> str:
    """Return the replica id at `index` of a decoded table."""
    position = check_int(index, what)
    if position >= len(table):
        fail(f"{what}: replica number {position} is not in the table of {len(table)}")
    return table[position]


def encode_context(context: CausalContext, table: ReplicaTable) -> list[object]:
    """Return a causal context as [flat version vector, flat cloud], replicas numbered by `table`."""
    vector: list[object] = []
    for replica, seq in sorted(context.version_vector.items()):
        vector += [table.number(replica), seq]
    cloud: list[object] = []
    for replica, seq in sorted(context.cloud):
        cloud += [table.number(replica), seq]
    return [vector, cloud]


def decode_context(value: object, table: Sequence[str]) -> CausalContext:
    """Return the causal context written by `encode_context`."""
    parts = check_list(value, "causal context")
    if len(parts) != 2:
        fail("causal context: expected [version vector, cloud]")
    vector_field = check_list(parts[0], "version vector", multiple_of=2)
    vector: dict[str, int] = {}
    for index in range(0, len(vector_field), 2):
        replica = read_replica(table, vector_field[index], "version vector")
        if replica in vector:
            fail("version vector: replica listed twice")
        vector[replica] = check_int(vector_field[index + 1], "version vector entry", minimum=1)
    return CausalContext(vector, decode_dots(parts[1], table, None))


def decode_dots(value: object, table: Sequence[str], context: CausalContext | None) -> frozenset[Dot]:
    """Return the dots of a flat [replica number, seq, ...] array; each must be in `context` if given."""
    flat = check_list(value, "dots", multiple_of=2)
    dots = frozenset(
        (read_replica(table, flat[i], "dot"), check_int(flat[i + 1], "dot", minimum=1))
        for i in range(0, len(flat), 2)
    )
    if len(dots) * 2 != len(flat):
        fail("dots: a dot is listed twice")
    if context is not None:
        for dot in dots:
            if not context.contains(dot):
                fail(f"dot {dot} is not covered by the causal context")
    return dots
