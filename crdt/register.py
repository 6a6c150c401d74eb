"""Causal last-writer-wins register: a multi-value register whose concurrent values are resolved by a
logical stamp with the replica id as tie-break, so every replica shows the same value. No clock."""

from __future__ import annotations

from collections.abc import Iterator

from crdt.dots import CausalContext, Dot

Entry = tuple[str, int, int, str]
"""One written value: (replica, seq, stamp, value); (replica, seq) is the write's dot."""


class Register(tuple[Entry, ...]):
    """An immutable register value: the writes no other write has yet overwritten, sorted by dot.

    A write observes the current entries and replaces them (the caller puts their dots and the new dot in
    the delta's causal context); concurrent writes both survive and `value` picks the one with the highest
    (stamp, replica). The stamp is one more than the highest stamp the writer saw, so a write always beats
    the values it observed. A tuple subclass, so equality and hashing are tuple's, fast and by value.
    """

    __slots__ = ()

    @property
    def value(self) -> str | None:
        """Return the winning value, or None when the register is empty."""
        if not self:
            return None
        if len(self) == 1:
            return self[0][3]
        return max(self, key=_precedence)[3]

    def dots(self) -> Iterator[Dot]:
        """Yield the dots of the surviving writes."""
        for replica, seq, _, _ in self:
            yield (replica, seq)

    def written(self, dot: Dot, value: str) -> Register:
        """Return the register after writing `value` with `dot` (this is also the delta's register)."""
        stamp = 1 + max((entry[2] for entry in self), default=0)
        return Register(((dot[0], dot[1], stamp, value),))

    def join(self, context: CausalContext, other: Register, other_context: CausalContext) -> Register:
        """Return the join of (self, context) with (other, other_context): keep a write that both hold,
        or that one holds and the other has not seen (if the other saw it, the other overwrote it)."""
        if self == other:
            return self
        if not other:
            return _unseen(self, other_context)
        if not self:
            return _unseen(other, context)
        # Registers hold one or two writes, so scanning the other tuple beats building sets; entries
        # with the same dot are equal, since a dot names one write.
        kept = [entry for entry in self if entry in other or not other_context.contains((entry[0], entry[1]))]
        kept += [entry for entry in other if entry not in self and not context.contains((entry[0], entry[1]))]
        if not kept:
            return EMPTY_REGISTER
        if len(kept) > 1:
            kept.sort()
        return Register(kept)


def _unseen(register: Register, context: CausalContext) -> Register:
    """Return the writes of `register` that `context` has not seen (the others were overwritten)."""
    kept = [entry for entry in register if not context.contains((entry[0], entry[1]))]
    if len(kept) == len(register):
        return register
    return Register(kept) if kept else EMPTY_REGISTER


def _precedence(entry: Entry) -> tuple[int, str]:
    return (entry[2], entry[0])


EMPTY_REGISTER = Register()
