"""Add-wins observed-remove set with unique dots per replica and a compact causal context
(the optimized OR-Set of Bieniusa et al. 2012, in delta-state form after Almeida et al. 2018)."""

from __future__ import annotations

from collections.abc import Hashable, Iterator

from crdt import codec
from crdt.dots import CausalContext, Dot
from crdt.replica import check_replica_id, new_replica_id

TAG = "OS"
VERSION = 1

Element = str | int | bytes


class ORSet:
    """A set where a concurrent add beats a remove. Every add mints a fresh dot; a remove deletes only the
    dots it observed, so an unobserved concurrent add survives. Mutators return deltas."""

    __slots__ = ("_context", "_entries", "replica")

    def __init__(self, replica: str) -> None:
        self.replica = check_replica_id(replica)
        self._entries: dict[Element, frozenset[Dot]] = {}
        self._context = CausalContext()

    def add(self, element: Element) -> ORSet:
        """Add `element` and return the delta."""
        _check_element(element)
        dot = self._context.next_dot(self.replica)
        delta = ORSet(self.replica)
        delta._entries[element] = frozenset((dot,))
        delta._context = CausalContext.of((*self._entries.get(element, ()), dot))
        self.merge(delta)
        return delta

    def remove(self, element: Element) -> ORSet:
        """Remove the observed occurrences of `element` and return the delta (empty if it is absent)."""
        delta = ORSet(self.replica)
        delta._context = CausalContext.of(self._entries.get(element, ()))
        self.merge(delta)
        return delta

    def value(self) -> frozenset[Element]:
        """Return the elements present."""
        return frozenset(self._entries)

    def __contains__(self, element: Hashable) -> bool:
        return element in self._entries

    def __iter__(self) -> Iterator[Element]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def merge(self, other: ORSet) -> None:
        """Merge `other` (a delta or a full state) into this set."""
        for element in set(self._entries) | set(other._entries):
            mine = self._entries.get(element, frozenset())
            theirs = other._entries.get(element, frozenset())
            kept = (mine & theirs) | {d for d in mine - theirs if not other._context.contains(d)}
            kept |= {d for d in theirs - mine if not self._context.contains(d)}
            if kept:
                self._entries[element] = frozenset(kept)
            else:
                self._entries.pop(element, None)
        self._context.join(other._context)

    def copy(self, replica: str | None = None) -> ORSet:
        """Return an independent copy, optionally acting as another replica."""
        duplicate = ORSet(replica or self.replica)
        duplicate._entries = dict(self._entries)
        duplicate._context = self._context.copy()
        return duplicate

    def to_bytes(self) -> bytes:
        """Return the compact binary encoding of the replicated state."""
        table = codec.ReplicaTable()
        entries = []
        for element, dots in self._entries.items():
            flat: list[object] = []
            for replica, seq in sorted(dots):
                flat += [table.number(replica), seq]
            entries += [element, flat]
        context = codec.encode_context(self._context, table)
        return codec.encode(TAG, VERSION, [table.ids, context, entries])

    @classmethod
    def from_bytes(cls, data: bytes, replica: str | None = None) -> ORSet:
        """Decode `data`; raise DecodeError (a ValueError) if it is not an ORSet encoding."""
        table_field, context_field, entries_field = codec.decode(data, TAG, VERSION, 3)

        def build() -> ORSet:
            table = codec.read_replica_table(table_field, "ORSet replicas")
            result = cls(replica or new_replica_id())
            result._context = codec.decode_context(context_field, table)
            entries = codec.check_list(entries_field, "ORSet entries", multiple_of=2)
            for index in range(0, len(entries), 2):
                element = entries[index]
                if not isinstance(element, str | int | bytes) or isinstance(element, bool):
                    codec.fail(f"ORSet element of type {type(element).__name__} is not allowed")
                dots = codec.decode_dots(entries[index + 1], table, result._context)
                if not dots:
                    codec.fail("ORSet element without dots")
                result._entries[element] = dots
            return result

        return codec.guarded(TAG, build)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ORSet):
            return NotImplemented
        return self._entries == other._entries and self._context == other._context

    def __repr__(self) -> str:
        return f"ORSet({sorted(map(repr, self._entries))}, replica={self.replica!r})"


def _check_element(element: object) -> None:
    if not isinstance(element, str | int | bytes) or isinstance(element, bool):
        raise ValueError(f"ORSet elements must be str, int or bytes, not {type(element).__name__}")
