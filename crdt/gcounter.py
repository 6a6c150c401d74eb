"""Grow-only counter: one monotonic count per replica, merged by maximum (Shapiro et al. 2011)."""

from __future__ import annotations

from crdt import codec
from crdt.replica import check_replica_id, new_replica_id

TAG = "GC"
VERSION = 1


class GCounter:
    """A counter that only goes up. `increment` returns a delta; `merge` is idempotent."""

    __slots__ = ("_counts", "replica")

    def __init__(self, replica: str) -> None:
        self.replica = check_replica_id(replica)
        self._counts: dict[str, int] = {}

    def increment(self, amount: int = 1) -> GCounter:
        """Add `amount` (>= 0) and return the delta."""
        if type(amount) is not int or amount < 0:
            raise ValueError(f"a GCounter increment must be a non-negative int, got {amount!r}")
        delta = GCounter(self.replica)
        delta._counts[self.replica] = self._counts.get(self.replica, 0) + amount
        self.merge(delta)
        return delta

    def value(self) -> int:
        """Return the total count."""
        return sum(self._counts.values())

    def counts(self) -> dict[str, int]:
        """Return a copy of the per-replica counts."""
        return dict(self._counts)

    def merge(self, other: GCounter) -> None:
        """Merge `other` (a delta or a full state) into this counter."""
        for replica, count in other._counts.items():
            if count > self._counts.get(replica, 0):
                self._counts[replica] = count

    def copy(self, replica: str | None = None) -> GCounter:
        """Return an independent copy, optionally acting as another replica."""
        duplicate = GCounter(replica or self.replica)
        duplicate._counts = dict(self._counts)
        return duplicate

    def to_bytes(self) -> bytes:
        """Return the compact binary encoding of the replicated state."""
        flat: list[object] = []
        for replica in sorted(self._counts):
            flat += [replica, self._counts[replica]]
        return codec.encode(TAG, VERSION, [flat])

    @classmethod
    def from_bytes(cls, data: bytes, replica: str | None = None) -> GCounter:
        """Decode `data`; raise DecodeError (a ValueError) if it is not a GCounter encoding."""
        (flat,) = codec.decode(data, TAG, VERSION, 1)

        def build() -> GCounter:
            counter = cls(replica or new_replica_id())
            pairs = codec.check_list(flat, "GCounter counts", multiple_of=2)
            for index in range(0, len(pairs), 2):
                owner = codec.check_str(pairs[index], "GCounter replica")
                check_replica_id(owner)
                counter._counts[owner] = codec.check_int(pairs[index + 1], "GCounter count")
            return counter

        return codec.guarded(TAG, build)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GCounter):
            return NotImplemented
        return {r: c for r, c in self._counts.items() if c} == {r: c for r, c in other._counts.items() if c}

    def __repr__(self) -> str:
        return f"GCounter({self.value()}, replica={self.replica!r})"
