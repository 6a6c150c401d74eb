"""Share codes: a list's 128-bit random id written for people to copy — Crockford base32 in groups of
four, case-insensitive, with the letters people confuse (I, L, O, U) read as what they look like."""

from __future__ import annotations

import re

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PREFIX = "SL"
_LOOKALIKES = str.maketrans({"I": "1", "L": "1", "O": "0", "U": "V"})
_LIST_ID = re.compile(r"[0-9a-f]{32}")


class ShareCodeError(ValueError):
    """The text is not a share code (mistyped, truncated, or from something else)."""


def share_code(list_id: str) -> str:
    """Return the share code of `list_id` (32 hex digits): "SL-" and seven groups of four, the last two
    characters a check. Raises ShareCodeError."""
    if not _LIST_ID.fullmatch(list_id):
        raise ShareCodeError(f"{list_id!r} is not a shareable list id")
    number = int(list_id, 16)
    digits = "".join(ALPHABET[(number >> shift) & 31] for shift in range(125, -1, -5))
    text = digits + _check(number)
    return "-".join([PREFIX, *(text[index : index + 4] for index in range(0, len(text), 4))])


def list_id_of(code: str) -> str:
    """Return the list id a share code names. Raises ShareCodeError on anything else, saying why."""
    text = re.sub(r"[\s-]", "", code).upper()
    if text.startswith(PREFIX):
        text = text[len(PREFIX) :]
    text = text.translate(_LOOKALIKES)
    if len(text) != 28:
        raise ShareCodeError(f"a share code has 28 characters after {PREFIX}-, this one has {len(text)}")
    bad = sorted({character for character in text if character not in ALPHABET})
    if bad:
        raise ShareCodeError(f"a share code cannot contain {''.join(bad)!r}")
    number = 0
    for character in text[:26]:
        number = number * 32 + ALPHABET.index(character)
    if number >= 1 << 128 or _check(number) != text[26:]:
        raise ShareCodeError("that share code has a typo (its check character does not match)")
    return f"{number:032x}"


def _check(number: int) -> str:
    """Return two check characters: the number modulo the prime 1021. Changing one base32 digit moves
    the number by d * 32**k, never a multiple of 1021, so every single-character typo is caught."""
    remainder = number % 1021
    return ALPHABET[remainder >> 5] + ALPHABET[remainder & 31]
