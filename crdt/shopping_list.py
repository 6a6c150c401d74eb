"""The shopping list: an add-wins map from item key to Item, plus a title register, sharing one causal
context (a delta-state causal CRDT after Almeida, Shoker and Baquero 2018). Every mutator returns a delta
that is itself a ShoppingList; applying a delta and merging a replica are the same `merge`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from crdt import codec
from crdt.causal_counter import EMPTY_COUNTER, CausalCounter, CounterEntry
from crdt.dots import CausalContext, Dot
from crdt.item import (
    EMPTY_ITEM,
    MAX_DETAIL_LENGTH,
    MAX_NAME_LENGTH,
    Item,
    check_detail,
    check_quantity,
    clean_name,
    item_key,
)
from crdt.register import EMPTY_REGISTER, Register
from crdt.replica import check_replica_id, new_replica_id

TAG = "SL"
HEADER_TAG = "SH"
ITEM_TAG = "SI"
VERSION = 2
"""The format written. Version 2 stores an item as [name or key, needed, category, acquired, unit, note]
with trailing empty fields left out and short counter entries; version 1 (seven fixed fields) is still
read, so stores and nodes written by an older release keep working."""
READABLE_VERSIONS = (1, 2)
MAX_TITLE_LENGTH = 200
DETAIL_FIELDS = ("category", "unit", "note")


class ItemView(NamedTuple):
    """What a user sees of one present item."""

    name: str
    needed: int
    acquired: int
    category: str
    unit: str
    note: str


class ShoppingList:
    """A replicated shopping list. `replica` is this copy's id; it is not part of the replicated state,
    so two converged copies compare equal whatever their ids."""

    __slots__ = ("_context", "_dot_owner", "_items", "_title", "replica")

    def __init__(self, replica: str) -> None:
        self.replica = check_replica_id(replica)
        self._context = CausalContext()
        self._title: Register = EMPTY_REGISTER
        self._items: dict[str, Item] = {}
        self._dot_owner: dict[Dot, str] = {}  # register dot -> key of the item holding it

    # ----- reading -----------------------------------------------------------------------------

    @property
    def title(self) -> str:
        """Return the list's title ("" until one is set)."""
        return self._title.value or ""

    def items(self) -> dict[str, tuple[int, int]]:
        """Return display name -> (needed, acquired) for every present item."""
        return {
            item.name.value: (item.needed.value, item.acquired.value)  # type: ignore[misc]
            for item in self._items.values()
            if item.name
        }

    def item(self, name: str) -> ItemView | None:
        """Return the present item called `name` (any case or spacing), or None."""
        record = self._items.get(item_key(name))
        return _view(record) if record is not None and record.present else None

    def entries(self) -> list[ItemView]:
        """Return every present item with all its fields, in no particular order."""
        return [_view(item) for item in self._items.values() if item.name]

    def __len__(self) -> int:
        return sum(1 for item in self._items.values() if item.name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.item(name) is not None

    @property
    def context(self) -> CausalContext:
        """Return a copy of the causal context: every event this replica has seen."""
        return self._context.copy()

    def is_empty(self) -> bool:
        """Return whether this holds no state at all (as the delta of a remove of an absent item)."""
        return not self._items and not self._title and self._context.dot_count() == 0

    # ----- mutators: each returns its delta ------------------------------------------------------

    def add_item(
        self,
        name: str,
        needed: int = 1,
        acquired: int = 0,
        *,
        category: str | None = None,
        unit: str | None = None,
        note: str | None = None,
    ) -> ShoppingList:
        """Add `needed` and `acquired` to the item called `name` (creating it) and return the delta.

        Concurrent adds sum. Raises ValueError on a bad name, quantity or detail.
        """
        display = clean_name(name)
        key = display.casefold()
        check_quantity(needed, "needed")
        check_quantity(acquired, "acquired")
        current = self._items.get(key, EMPTY_ITEM)
        return self._write_item(
            key,
            display,
            _details(category, unit, note),
            needed_move=_move_to(current.needed, current.needed.value + needed),
            acquired_move=_move_to(current.acquired, current.acquired.value + acquired),
        )

    def set_item(
        self,
        name: str,
        needed: int | None = None,
        acquired: int | None = None,
        *,
        category: str | None = None,
        unit: str | None = None,
        note: str | None = None,
    ) -> ShoppingList:
        """Set the item's quantities (those given) and details, creating it if absent; return the delta.

        Each quantity moves by the difference from what this replica sees. Raises ValueError on bad input.
        """
        display = clean_name(name)
        key = display.casefold()
        current = self._items.get(key, EMPTY_ITEM)
        needed_move = acquired_move = 0
        if needed is not None:
            needed_move = _move_to(current.needed, check_quantity(needed, "needed"))
        if acquired is not None:
            acquired_move = _move_to(current.acquired, check_quantity(acquired, "acquired"))
        return self._write_item(key, display, _details(category, unit, note), needed_move, acquired_move)

    def remove_item(self, name: str) -> ShoppingList:
        """Remove what this replica has observed of the item and return the delta (empty if absent).

        A concurrent edit this replica has not seen survives, holding only its own change.
        """
        key = item_key(name)
        current = self._items.get(key)
        delta = ShoppingList(self.replica)
        if current is None or not current.present:
            return delta
        delta._context = CausalContext.of(current.register_dots())
        delta._store(key, Item(needed=current.needed.reset(), acquired=current.acquired.reset()))
        self.merge(delta)
        return delta

    def set_title(self, title: str) -> ShoppingList:
        """Set the list's title and return the delta. Raises ValueError on a bad title."""
        if not isinstance(title, str):
            raise ValueError(f"a title must be a str, not {type(title).__name__}")
        cleaned = " ".join(title.split())
        if not cleaned or len(cleaned) > MAX_TITLE_LENGTH:
            raise ValueError(f"a title must have 1 to {MAX_TITLE_LENGTH} characters")
        dot = self._context.next_dot(self.replica)
        delta = ShoppingList(self.replica)
        delta._title = self._title.written(dot, cleaned)
        delta._context = CausalContext.of((*self._title.dots(), dot))
        self.merge(delta)
        return delta

    # ----- merging ---------------------------------------------------------------------------------

    def merge(self, other: ShoppingList) -> None:
        """Merge `other` (a delta or a full state) into this list, in place. Idempotent, commutative,
        associative. Costs time in proportion to `other` (plus this list's size when `other` is a full
        state whose context covers many dots)."""
        self.merge_changes(other)

    def merge_changes(self, other: ShoppingList) -> set[str]:
        """Merge like `merge` and return the keys of the item records that changed (added, altered or
        dropped), so a store can rewrite just those. The title's change shows in `title`."""
        if other is self:
            return set()
        if not isinstance(other, ShoppingList):
            raise TypeError(f"can only merge a ShoppingList, not {type(other).__name__}")
        context, other_context = self._context, other._context
        overwritten = self._keys_overwritten_by(other)
        touched = overwritten | other._items.keys()
        before = {key: self._items.get(key) for key in touched}
        self._title = self._title.join(context, other._title, other_context)
        for key, theirs in other._items.items():
            mine = before[key]
            if mine is None:
                self._store(key, _unseen_part(theirs, context, other_context))
            elif mine is not theirs and mine != theirs:
                self._store(key, mine.join(context, theirs, other_context))
        for key in overwritten:
            self._store(key, self._items[key].join(context, EMPTY_ITEM, other_context))
        context.join(other_context)
        return {key for key in touched if self._items.get(key) != before[key]}

    def copy(self, replica: str | None = None) -> ShoppingList:
        """Return an independent copy of the replicated state, acting as `replica` (default: the same)."""
        duplicate = ShoppingList(replica or self.replica)
        duplicate._context = self._context.copy()
        duplicate._title = self._title
        duplicate._items = dict(self._items)
        duplicate._dot_owner = dict(self._dot_owner)
        return duplicate

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ShoppingList):
            return NotImplemented
        return self._context == other._context and self._title == other._title and self._items == other._items

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ShoppingList({self.title!r}, {self.items()!r}, replica={self.replica!r})"

    # ----- encoding --------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Return the compact, canonical binary encoding of the replicated state (equal states give
        equal bytes)."""
        table = codec.ReplicaTable()
        context = codec.encode_context(self._context, table)
        title = _encode_register(self._title, table)
        items = [_encode_item(key, self._items[key], table) for key in sorted(self._items)]
        return codec.encode(TAG, VERSION, [table.ids, context, title, items])

    @classmethod
    def from_bytes(cls, data: bytes, replica: str | None = None) -> ShoppingList:
        """Decode `data` as a list acting as `replica` (default: a fresh replica id, never a reused one).

        Raises DecodeError (a ValueError) on anything that is not a valid encoding, and
        UnsupportedVersionError (a DecodeError) on a format version this code does not read.
        """
        version, body = codec.decode_versioned(data, TAG, dict.fromkeys(READABLE_VERSIONS, 4))
        table_field, context_field, title_field, items_field = body
        result = cls(replica or new_replica_id())

        def build() -> ShoppingList:
            table = codec.read_replica_table(table_field, "replica table")
            result._read_header(table, context_field, title_field)
            for fields in codec.check_list(items_field, "items"):
                result._read_item(table, fields, version)
            return result

        return codec.guarded(TAG, build)

    # ----- storage in parts: a header plus one record per item ---------------------------------------

    def item_keys(self) -> set[str]:
        """Return the keys of every item record held, present or removed."""
        return set(self._items)

    def header_bytes(self) -> bytes:
        """Return the list-level part of the state (causal context and title), self-contained."""
        table = codec.ReplicaTable()
        context = codec.encode_context(self._context, table)
        title = _encode_register(self._title, table)
        return codec.encode(HEADER_TAG, VERSION, [table.ids, context, title])

    def item_bytes(self, key: str) -> bytes | None:
        """Return the self-contained record of the item with `key`, or None if no record is held."""
        item = self._items.get(key)
        if item is None:
            return None
        table = codec.ReplicaTable()
        return codec.encode(ITEM_TAG, VERSION, [_encode_item(key, item, table), table.ids])

    @classmethod
    def from_parts(cls, header: bytes, items: Iterable[bytes], replica: str | None = None) -> ShoppingList:
        """Assemble a list from `header_bytes()` and any number of `item_bytes()` records.

        With every record this is the whole list; with some, a partial list that is valid for editing
        the items it holds and for merging deltas that concern only them. Raises DecodeError as
        `from_bytes` does, also when an item record does not fit the header's causal context.
        """
        _, header_body = codec.decode_versioned(header, HEADER_TAG, dict.fromkeys(READABLE_VERSIONS, 3))
        table_field, context_field, title_field = header_body
        result = cls(replica or new_replica_id())

        def build() -> ShoppingList:
            result._read_header(
                codec.read_replica_table(table_field, "replica table"), context_field, title_field
            )
            for record in items:
                version, (fields, item_table) = codec.decode_versioned(
                    record, ITEM_TAG, dict.fromkeys(READABLE_VERSIONS, 2)
                )
                table = codec.read_replica_table(item_table, "item replica table")
                result._read_item(table, fields, version)
            return result

        return codec.guarded(HEADER_TAG, build)

    def _read_header(self, table: Sequence[str], context_field: object, title_field: object) -> None:
        self._context = codec.decode_context(context_field, table)
        self._title = _decode_register(title_field, table, self._context, "title", MAX_TITLE_LENGTH)

    def _read_item(self, table: Sequence[str], fields: object, version: int) -> None:
        key, item = _decode_item(fields, table, self._context, version)
        if key in self._items:
            codec.fail(f"item {key!r} is listed twice")
        dots = item.register_dots()
        # Every write has a dot of its own: two registers sharing one would corrupt the dot index.
        if len(set(dots)) != len(dots) or any(dot in self._dot_owner for dot in dots):
            codec.fail(f"item {key!r}: a write's dot is used by another write")
        if any(dot in dots for dot in self._title.dots()):
            codec.fail(f"item {key!r}: a write's dot is used by the title")
        self._store(key, item)

    # ----- internals -------------------------------------------------------------------------------

    def _write_item(
        self, key: str, display: str, details: dict[str, str], needed_move: int, acquired_move: int
    ) -> ShoppingList:
        """Apply one edit of an item and return its delta. Each register written gets its own fresh
        dot: a later write that overwrites one register must not cover the others."""
        current = self._items.get(key, EMPTY_ITEM)
        seq = self._context.max_seq(self.replica) + 1
        name_dot = (self.replica, seq)
        replaced: list[Dot] = [*current.name.dots(), name_dot]
        registers = {}
        for field in DETAIL_FIELDS:
            if field in details:
                old: Register = getattr(current, field)
                seq += 1  # consecutive dots keep the context compact
                dot = (self.replica, seq)
                registers[field] = old.written(dot, details[field])
                replaced += [*old.dots(), dot]
        delta = ShoppingList(self.replica)
        delta._context = CausalContext.of(replaced)
        delta._store(
            key,
            Item(
                name=current.name.written(name_dot, display),
                needed=current.needed.changed_by(self.replica, needed_move) if needed_move else EMPTY_COUNTER,
                acquired=(
                    current.acquired.changed_by(self.replica, acquired_move)
                    if acquired_move
                    else EMPTY_COUNTER
                ),
                **registers,
            ),
        )
        self.merge(delta)
        return delta

    def _store(self, key: str, item: Item) -> None:
        """Put `item` under `key` (dropping it when empty) and keep the dot index in step."""
        old = self._items.get(key)
        if old is item:
            return
        if old is not None:
            for dot in old.register_dots():
                del self._dot_owner[dot]
        if item == EMPTY_ITEM:
            self._items.pop(key, None)
            return
        self._items[key] = item
        for dot in item.register_dots():
            self._dot_owner[dot] = key

    def _keys_overwritten_by(self, other: ShoppingList) -> set[str]:
        """Return keys of items absent from `other` that hold a register write `other` has seen (and so
        overwrote or removed). Walks whichever is smaller: `other`'s context or this list's dot index."""
        context = other._context
        if context.dot_count() <= len(self._dot_owner):
            keys = {self._dot_owner[dot] for dot in context.dots() if dot in self._dot_owner}
        else:
            keys = {key for dot, key in self._dot_owner.items() if context.contains(dot)}
        return {key for key in keys if key not in other._items}


def _unseen_part(item: Item, context: CausalContext, item_context: CausalContext) -> Item:
    """Return what survives of an item new to a replica with `context`: all of it, unless the replica
    has seen (and so overwritten) some of its register writes."""
    if any(context.contains(dot) for dot in item.register_dots()):
        return EMPTY_ITEM.join(context, item, item_context)
    return item


def _move_to(counter: CausalCounter, target: int) -> int:
    """Return how far to move `counter` from its raw value so a user sees `target`."""
    return target - counter.raw_value


def _details(category: str | None, unit: str | None, note: str | None) -> dict[str, str]:
    given = {"category": category, "unit": unit, "note": note}
    return {field: check_detail(field, value) for field, value in given.items() if value is not None}


def _view(item: Item) -> ItemView:
    return ItemView(
        name=item.name.value or "",
        needed=item.needed.value,
        acquired=item.acquired.value,
        category=item.category.value or "",
        unit=item.unit.value or "",
        note=item.note.value or "",
    )


def _encode_item(key: str, item: Item, table: codec.ReplicaTable) -> list[object]:
    """Return an item record: a present item starts with its name register, a removed one (no name)
    with its key; the fields most items leave empty come last and are left out when empty."""
    fields: list[object] = [
        _encode_register(item.name, table) if item.name else key,
        _encode_counter(item.needed, table),
        _encode_register(item.category, table),
        _encode_counter(item.acquired, table),
        _encode_register(item.unit, table),
        _encode_register(item.note, table),
    ]
    while len(fields) > 1 and not fields[-1]:
        fields.pop()
    return fields


def _encode_register(register: Register, table: codec.ReplicaTable) -> list[object]:
    flat: list[object] = []
    for replica, seq, stamp, value in register:
        flat += [table.number(replica), seq, stamp, value]
    return flat


def _encode_counter(counter: CausalCounter, table: codec.ReplicaTable) -> list[object]:
    """Return a counter as flat entries. The first number of an entry is twice the replica's number,
    plus 1 when the full [P, N, PF, NF] follows; an entry with only increments and no floor (the common
    case) is just [2 * replica, P]."""
    flat: list[object] = []
    for replica, p, n, pf, nf in counter:
        number = 2 * table.number(replica)
        if n == pf == nf == 0:
            flat += [number, p]
        else:
            flat += [number + 1, p, n, pf, nf]
    return flat


def _decode_register(
    value: object, table: Sequence[str], context: CausalContext, what: str, max_length: int
) -> Register:
    flat = codec.check_list(value, what, multiple_of=4)
    if not flat:
        return EMPTY_REGISTER
    entries = [
        _decode_write(flat, index, table, context, what, max_length) for index in range(0, len(flat), 4)
    ]
    if len(entries) == 1:
        return Register(entries)
    if len({(entry[0], entry[1]) for entry in entries}) != len(entries):
        codec.fail(f"{what}: a write is listed twice")
    return Register(sorted(entries))


def _decode_write(
    flat: list[object], index: int, table: Sequence[str], context: CausalContext, what: str, max_length: int
) -> tuple[str, int, int, str]:
    dot = (codec.read_replica(table, flat[index], what), codec.check_int(flat[index + 1], what, minimum=1))
    if not context.contains(dot):
        codec.fail(f"{what}: write {dot} is not covered by the causal context")
    stamp = codec.check_int(flat[index + 2], f"{what} stamp", minimum=1)
    return (dot[0], dot[1], stamp, codec.check_str(flat[index + 3], what, max_length=max_length))


def _decode_counter(value: object, table: Sequence[str], what: str, version: int) -> CausalCounter:
    read = _counter_entries_v1 if version == 1 else _counter_entries
    entries = read(value, table, what)
    if not entries:
        return EMPTY_COUNTER
    for _, p, n, pf, nf in entries:
        if pf > p or nf > n:
            codec.fail(f"{what}: a floor lies above its total")
    if len({entry[0] for entry in entries}) != len(entries):
        codec.fail(f"{what}: a replica is listed twice")
    return CausalCounter.from_entries(entries)


def _counter_entries(value: object, table: Sequence[str], what: str) -> list[CounterEntry]:
    """Read the entries written by `_encode_counter`."""
    flat = codec.check_list(value, what)
    entries: list[CounterEntry] = []
    index = 0
    while index < len(flat):
        number = codec.check_int(flat[index], what)
        width = 5 if number & 1 else 2
        if index + width > len(flat):
            codec.fail(f"{what}: the last entry is cut short")
        replica = codec.read_replica(table, number >> 1, what)
        totals = [codec.check_int(flat[index + offset], what) for offset in range(1, width)]
        p, n, pf, nf = totals if width == 5 else (totals[0], 0, 0, 0)
        if width == 5 and n == pf == nf == 0:
            codec.fail(f"{what}: an entry with only increments must be written short")
        entries.append((replica, p, n, pf, nf))
        index += width
    return entries


def _counter_entries_v1(value: object, table: Sequence[str], what: str) -> list[CounterEntry]:
    """Read version 1 counter entries: flat groups of [replica, P, N, PF, NF]."""
    flat = codec.check_list(value, what, multiple_of=5)
    entries: list[CounterEntry] = []
    for index in range(0, len(flat), 5):
        replica = codec.read_replica(table, flat[index], what)
        p, n, pf, nf = (codec.check_int(flat[index + offset], what) for offset in range(1, 5))
        entries.append((replica, p, n, pf, nf))
    return entries


class _ItemFields(NamedTuple):
    """The fields of an item record, whatever the format version."""

    stored_key: object
    name: object
    details: tuple[object, object, object]
    needed: object
    acquired: object


def _item_fields(fields: object, version: int) -> _ItemFields:
    parts = codec.check_list(fields, "item")
    if version == 1:
        if len(parts) != 7:
            codec.fail(f"item: expected 7 fields, found {len(parts)}")
        stored_key, name, category, unit, note, needed, acquired = parts
        if name and stored_key is not None:
            codec.fail("item: a present item must not repeat its key")
        return _ItemFields(stored_key, name, (category, unit, note), needed, acquired)
    if not 1 <= len(parts) <= 6:
        codec.fail(f"item: expected 1 to 6 fields, found {len(parts)}")
    if len(parts) > 1 and parts[-1] == []:
        codec.fail("item: trailing empty fields must be left out")
    head, needed, category, acquired, unit, note = parts + [[]] * (6 - len(parts))
    if isinstance(head, str):
        return _ItemFields(head, [], (category, unit, note), needed, acquired)
    return _ItemFields(None, head, (category, unit, note), needed, acquired)


def _decode_item(
    fields: object, table: Sequence[str], context: CausalContext, version: int
) -> tuple[str, Item]:
    parts = _item_fields(fields, version)
    name = _decode_register(parts.name, table, context, "item name", MAX_NAME_LENGTH)
    if not name and parts.name:
        codec.fail("item: a removed item stores its key, not an empty name")
    category, unit, note = [
        _decode_register(value, table, context, f"item {field}", MAX_DETAIL_LENGTH[field])
        for field, value in zip(DETAIL_FIELDS, parts.details, strict=True)
    ]
    needed = _decode_counter(parts.needed, table, "needed", version)
    acquired = _decode_counter(parts.acquired, table, "acquired", version)
    item = Item(name, category, unit, note, needed, acquired)
    if name:
        keys = {_checked_key(value) for value in (entry[3] for entry in name)}
        if len(keys) != 1:
            codec.fail("item: its names do not agree on one key")
        key = keys.pop()
    else:
        key = codec.check_str(parts.stored_key, "item key")
        if _checked_key(key) != key:
            codec.fail(f"item key {key!r} is not in canonical form")
    if not any(item):
        codec.fail(f"item {key!r} holds no state")
    return key, item


def _checked_key(name: str) -> str:
    try:
        return item_key(name)
    except ValueError as error:
        raise codec.DecodeError(f"item name: {error}") from None
