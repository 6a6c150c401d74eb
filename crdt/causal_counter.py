"""Causal counter: a PN counter whose reset removes exactly the contributions the resetter observed.

Each replica r keeps monotonic totals (P_r, N_r) of its increments and decrements, and a floor
(PF_r, NF_r): the totals some reset observed. The value is the sum over r of (P_r - PF_r) - (N_r - NF_r).
Every component merges by maximum, so merge is a join in a product of max-lattices: commutative,
associative, idempotent, insensitive to delivery order. A reset raises each floor to the totals it saw;
an increment it did not see lies above the floor and survives; two concurrent resets raise the floors to
the same observations, so they never subtract twice (the plain PN-counter "remove" does, and goes negative).
"""

from __future__ import annotations

from collections.abc import Iterable

CounterEntry = tuple[str, int, int, int, int]
"""(replica, P, N, PF, NF): totals and floors of one replica, with PF <= P and NF <= N."""


class CausalCounter(tuple[CounterEntry, ...]):
    """An immutable counter value: one entry per contributing replica, sorted by replica id. A tuple
    subclass, so equality is tuple's, fast and by value."""

    __slots__ = ()

    @classmethod
    def from_entries(cls, entries: Iterable[CounterEntry]) -> CausalCounter:
        """Return the counter holding `entries` (any order, one per replica)."""
        ordered = sorted(entries)
        return cls(ordered) if ordered else EMPTY_COUNTER

    @property
    def raw_value(self) -> int:
        """Return the exact sum of unreset contributions; negative after concurrent decrements."""
        return sum((p - pf) - (n - nf) for _, p, n, pf, nf in self)

    @property
    def value(self) -> int:
        """Return the quantity a user sees: the raw value, never below zero."""
        return max(0, self.raw_value)

    def changed_by(self, replica: str, amount: int) -> CausalCounter:
        """Return the delta that moves the counter by `amount` as `replica`: that replica's entry only."""
        own = next((entry for entry in self if entry[0] == replica), (replica, 0, 0, 0, 0))
        _, p, n, pf, nf = own
        if amount >= 0:
            p += amount
        else:
            n -= amount
        return CausalCounter(((replica, p, n, pf, nf),))

    def reset(self) -> CausalCounter:
        """Return the delta that removes every contribution this replica has observed."""
        return CausalCounter((owner, p, n, p, n) for owner, p, n, _, _ in self)

    def join(self, other: CausalCounter) -> CausalCounter:
        """Return the least upper bound of the two counters."""
        if self == other or not other:
            return self
        if not self:
            return other
        if len(self) == 1 and len(other) == 1 and self[0][0] != other[0][0]:
            return CausalCounter(sorted((self[0], other[0])))
        merged = {entry[0]: entry for entry in self}
        for entry in other:
            mine = merged.get(entry[0])
            if mine is None:
                merged[entry[0]] = entry
            elif mine != entry:
                merged[entry[0]] = (
                    entry[0],
                    max(mine[1], entry[1]),
                    max(mine[2], entry[2]),
                    max(mine[3], entry[3]),
                    max(mine[4], entry[4]),
                )
        return CausalCounter.from_entries(merged.values())


EMPTY_COUNTER = CausalCounter()
