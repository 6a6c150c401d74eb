"""Positive-negative counter: two grow-only counters, value = ups - downs (Shapiro et al. 2011)."""

from __future__ import annotations

from crdt import codec
from crdt.gcounter import GCounter
from crdt.replica import check_replica_id, new_replica_id

TAG = "PN"
VERSION = 1


class PNCounter:
    """A counter that goes up and down. Mutators return deltas; `merge` is idempotent."""

    __slots__ = ("_decrements", "_increments", "replica")

    def __init__(self, replica: str) -> None:
        self.replica = check_replica_id(replica)
        self._increments = GCounter(replica)
        self._decrements = GCounter(replica)

    def increment(self, amount: int = 1) -> PNCounter:
        """Add `amount` (>= 0) and return the delta."""
        delta = PNCounter(self.replica)
        delta._increments = self._increments.increment(amount)
        return delta

    def decrement(self, amount: int = 1) -> PNCounter:
        """Subtract `amount` (>= 0) and return the delta."""
        delta = PNCounter(self.replica)
        delta._decrements = self._decrements.increment(amount)
        return delta

    def value(self) -> int:
        """Return increments minus decrements (may be negative)."""
        return self._increments.value() - self._decrements.value()

    def merge(self, other: PNCounter) -> None:
        """Merge `other` (a delta or a full state) into this counter."""
        self._increments.merge(other._increments)
        self._decrements.merge(other._decrements)

    def copy(self, replica: str | None = None) -> PNCounter:
        """Return an independent copy, optionally acting as another replica."""
        duplicate = PNCounter(replica or self.replica)
        duplicate._increments = self._increments.copy(duplicate.replica)
        duplicate._decrements = self._decrements.copy(duplicate.replica)
        return duplicate

    def to_bytes(self) -> bytes:
        """Return the compact binary encoding of the replicated state."""
        return codec.encode(TAG, VERSION, [self._increments.to_bytes(), self._decrements.to_bytes()])

    @classmethod
    def from_bytes(cls, data: bytes, replica: str | None = None) -> PNCounter:
        """Decode `data`; raise DecodeError (a ValueError) if it is not a PNCounter encoding."""
        increments, decrements = codec.decode(data, TAG, VERSION, 2)
        counter = cls(replica or new_replica_id())
        counter._increments = GCounter.from_bytes(increments, counter.replica)
        counter._decrements = GCounter.from_bytes(decrements, counter.replica)
        return counter

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PNCounter):
            return NotImplemented
        return self._increments == other._increments and self._decrements == other._decrements

    def __repr__(self) -> str:
        return f"PNCounter({self.value()}, replica={self.replica!r})"
