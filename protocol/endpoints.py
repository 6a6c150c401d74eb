"""Endpoint strings with a pinned CurveZMQ server key: `tcp://host:port?key=<z85>` (RFC 32 Z85 text)."""

from __future__ import annotations

Z85_ALPHABET = frozenset(
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
)
KEY_LENGTH = 40
"""A Curve25519 key of 32 bytes is 40 characters of Z85."""
KEY_QUERY = "?key="


def is_key(text: object) -> bool:
    """Return whether `text` is a 40-character Z85 key (a Curve public or secret key)."""
    return isinstance(text, str) and len(text) == KEY_LENGTH and set(text) <= Z85_ALPHABET


def split_endpoint(endpoint: str) -> tuple[str, str | None]:
    """Return (the address to connect to, the pinned server key or None). The address never holds a `?`,
    so the first one starts the query. Raises ValueError on a query that is not one valid `key=`."""
    address, mark, query = endpoint.partition("?")
    if not mark:
        return address, None
    key = query.removeprefix("key=")
    if key == query or not is_key(key):
        raise ValueError(f"{endpoint!r}: the part after `?` must be key=<a 40-character Z85 public key>")
    return address, key


def address_of(endpoint: str) -> str:
    """Return `endpoint` without its key, for connecting, binding and showing to people."""
    return endpoint.partition("?")[0]


def with_key(address: str, key: str) -> str:
    """Return `address` carrying the pinned `key` (an empty key means none: plain text)."""
    return f"{address_of(address)}{KEY_QUERY}{key}" if key else address_of(address)
