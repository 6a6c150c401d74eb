"""Hypothesis strategies for hostile input: any msgpack value (wrong types, huge numbers, deep nesting),
random-kind headers, and byte mutations of valid encodings."""

from __future__ import annotations

import os
from typing import Any

import msgpack
from hypothesis import settings
from hypothesis import strategies as st

HUGE_INTS = st.sampled_from([-(2**63), -1, 0, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1])
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | HUGE_INTS
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.binary(max_size=20)
)
VALUES: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=25,
)
"""Any value msgpack can carry in a header (binary included: a decoder must reject it, not choke)."""

NASTY = st.sampled_from(
    [
        None,
        True,
        False,
        -1,
        0,
        1,
        2**63 - 1,
        2**63,
        2**64 - 1,
        -(2**63),
        0.5,
        float("nan"),
        float("inf"),
        "",
        "x" * 300,
        "n1",
        b"",
        [],
        {},
        [[]],
        [0, 0, 0],
        [0, 0, 0, 0],
        [[0, 0, 0, 0]],
        [[0, 1, 2, 3, 4]],
        [["x", 1]],
        {"a": [1]},
        [None] * 5,
    ]
)
"""A fixed pool of awkward values: cheap to draw where a test needs many fields of them."""


def nested(depth: int) -> Any:
    """Return a list nested `depth` deep (deeper than any decoder's recursion limit if large)."""
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def deep_msgpack(depth: int) -> bytes:
    """Return msgpack bytes of arrays nested `depth` deep, built without recursion."""
    return b"\x91" * depth + b"\x90"


@st.composite
def mutations(draw: st.DrawFn, data: bytes) -> bytes:
    """Return `data` truncated, extended, or with a few bytes flipped or replaced."""
    how = draw(st.sampled_from(("truncate", "flip", "replace", "append", "splice")))
    if how == "truncate" or not data:
        return data[: draw(st.integers(0, max(0, len(data) - 1)))]
    mutated = bytearray(data)
    if how == "flip":
        for _ in range(draw(st.integers(1, 4))):
            mutated[draw(st.integers(0, len(data) - 1))] ^= 1 << draw(st.integers(0, 7))
    elif how == "replace":
        for _ in range(draw(st.integers(1, 4))):
            mutated[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    elif how == "append":
        mutated += draw(st.binary(min_size=1, max_size=16))
    else:
        at = draw(st.integers(0, len(data)))
        mutated[at:at] = draw(st.binary(min_size=1, max_size=16))
    return bytes(mutated)


def packed(value: Any) -> bytes:
    """Return the msgpack encoding of `value`."""
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def fuzzing(examples: int) -> settings:
    """Return settings running `examples` examples, ten times as many under the `long` profile (the
    default profile keeps the fuzz tests within CI time)."""
    scale = 10 if os.environ.get("HYPOTHESIS_PROFILE") == "long" else 1
    return settings(max_examples=examples * scale)
