"""One shopping-list item as a CRDT record: registers for the name and details, causal counters for the
quantities; plus the rule that turns a name into the item's key."""

from __future__ import annotations

from typing import NamedTuple

from crdt.causal_counter import EMPTY_COUNTER, CausalCounter
from crdt.dots import CausalContext, Dot
from crdt.register import EMPTY_REGISTER, Register

MAX_NAME_LENGTH = 200
MAX_DETAIL_LENGTH = {"category": 100, "unit": 40, "note": 1000}
MAX_QUANTITY = 1_000_000


class Item(NamedTuple):
    """The replicated state of one item. The item is present while its name register holds a write: every
    edit writes the name, a remove clears the writes it observed."""

    name: Register = EMPTY_REGISTER
    category: Register = EMPTY_REGISTER
    unit: Register = EMPTY_REGISTER
    note: Register = EMPTY_REGISTER
    needed: CausalCounter = EMPTY_COUNTER
    acquired: CausalCounter = EMPTY_COUNTER

    @property
    def present(self) -> bool:
        """Return whether the item shows in the list (its name register is not empty)."""
        return bool(self.name)

    def register_dots(self) -> list[Dot]:
        """Return the dots of every surviving register write."""
        return [(entry[0], entry[1]) for register in self[:4] for entry in register]

    def join(self, context: CausalContext, other: Item, other_context: CausalContext) -> Item:
        """Return the join of (self, context) with (other, other_context)."""
        if self == other:
            return self
        return Item(
            self.name.join(context, other.name, other_context),
            self.category.join(context, other.category, other_context),
            self.unit.join(context, other.unit, other_context),
            self.note.join(context, other.note, other_context),
            self.needed.join(other.needed),
            self.acquired.join(other.acquired),
        )


EMPTY_ITEM = Item()


def clean_name(name: object) -> str:
    """Return `name` trimmed, with inner whitespace collapsed to single spaces.

    Raises ValueError if it is not a str, holds a NUL character (no text column of a database can store
    one, and the name is the item's key), is empty after trimming, or is longer than MAX_NAME_LENGTH.
    """
    if not isinstance(name, str):
        raise ValueError(f"an item name must be a str, not {type(name).__name__}")
    if "\x00" in name:
        raise ValueError("an item name cannot contain a NUL character")
    cleaned = " ".join(name.split())
    if not cleaned:
        raise ValueError("an item name cannot be empty")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise ValueError(f"an item name can have at most {MAX_NAME_LENGTH} characters, got {len(cleaned)}")
    return cleaned


def item_key(name: str) -> str:
    """Return the key that identifies the item called `name`: " Milk " and "milk" are one item."""
    return clean_name(name).casefold()


def check_quantity(value: object, what: str) -> int:
    """Return `value` if it is a quantity a user may enter: an int from 0 to MAX_QUANTITY."""
    if type(value) is not int:
        raise ValueError(f"{what} must be a whole number, got {value!r}")
    if not 0 <= value <= MAX_QUANTITY:
        raise ValueError(f"{what} must be between 0 and {MAX_QUANTITY}, got {value}")
    return value


def check_detail(field: str, value: object) -> str:
    """Return `value` if it fits the detail `field` (category, unit, note); "" clears the detail."""
    if not isinstance(value, str):
        raise ValueError(f"{field} must be a str, not {type(value).__name__}")
    cleaned = value.strip()
    limit = MAX_DETAIL_LENGTH[field]
    if len(cleaned) > limit:
        raise ValueError(f"{field} can have at most {limit} characters, got {len(cleaned)}")
    return cleaned
