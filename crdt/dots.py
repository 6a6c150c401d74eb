"""Dots and causal contexts: the set of events a replica has seen, kept as a version vector plus a
small dot cloud (Almeida, Shoker and Baquero, "Delta state replicated data types", 2018, section 5)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

Dot = tuple[str, int]
"""One event: (replica id, that replica's event number, counting from 1)."""


class CausalContext:
    """A set of dots, compacted: every replica's contiguous prefix 1..k lives in the version vector, and
    only dots past a gap (deltas that arrived out of order) stay in the cloud. Compaction is canonical,
    so two contexts holding the same dots compare equal."""

    __slots__ = ("_cloud", "_version_vector")

    def __init__(self, version_vector: dict[str, int] | None = None, cloud: Iterable[Dot] = ()) -> None:
        self._version_vector: dict[str, int] = {r: s for r, s in (version_vector or {}).items() if s > 0}
        self._cloud: set[Dot] = set()
        for dot in cloud:
            self.add(dot)

    @classmethod
    def of(cls, dots: Iterable[Dot]) -> CausalContext:
        """Return the context holding exactly `dots`."""
        context = cls()
        for dot in dots:
            context.add(dot)
        return context

    @property
    def version_vector(self) -> dict[str, int]:
        """A copy of the compacted part: replica -> highest k such that 1..k were all seen."""
        return dict(self._version_vector)

    @property
    def cloud(self) -> frozenset[Dot]:
        """The dots seen past a gap."""
        return frozenset(self._cloud)

    def contains(self, dot: Dot) -> bool:
        """Return whether `dot` has been seen."""
        return dot[1] <= self._version_vector.get(dot[0], 0) or dot in self._cloud

    def max_seq(self, replica: str) -> int:
        """Return the highest event number seen from `replica` (0 if none)."""
        highest = self._version_vector.get(replica, 0)
        for cloud_replica, seq in self._cloud:
            if cloud_replica == replica and seq > highest:
                highest = seq
        return highest

    def next_dot(self, replica: str) -> Dot:
        """Return the dot `replica` should use for its next event (not yet added)."""
        return (replica, self.max_seq(replica) + 1)

    def add(self, dot: Dot) -> None:
        """Record `dot` as seen."""
        replica, seq = dot
        known = self._version_vector.get(replica, 0)
        if seq <= known:
            return
        if seq == known + 1:
            self._version_vector[replica] = seq
            self._absorb_cloud(replica)
        else:
            self._cloud.add(dot)

    def join(self, other: CausalContext) -> None:
        """Add every dot of `other` to this context."""
        for replica, seq in other._version_vector.items():
            if seq > self._version_vector.get(replica, 0):
                self._version_vector[replica] = seq
        touched = {replica for replica, _ in self._cloud} | set(other._version_vector)
        for dot in other._cloud:
            if not self.contains(dot):
                self._cloud.add(dot)
                touched.add(dot[0])
        self._drop_covered_cloud()
        for replica in touched:
            self._absorb_cloud(replica)

    def dots(self) -> Iterator[Dot]:
        """Yield every dot in the context (the version vector expanded)."""
        for replica, highest in self._version_vector.items():
            for seq in range(1, highest + 1):
                yield (replica, seq)
        yield from self._cloud

    def dot_count(self) -> int:
        """Return how many dots the context holds."""
        return sum(self._version_vector.values()) + len(self._cloud)

    def copy(self) -> CausalContext:
        """Return an independent copy."""
        duplicate = CausalContext()
        duplicate._version_vector = dict(self._version_vector)
        duplicate._cloud = set(self._cloud)
        return duplicate

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CausalContext):
            return NotImplemented
        return self._version_vector == other._version_vector and self._cloud == other._cloud

    def __repr__(self) -> str:
        return f"CausalContext({self._version_vector!r}, cloud={sorted(self._cloud)!r})"

    def _absorb_cloud(self, replica: str) -> None:
        """Move the cloud dots that continue `replica`'s contiguous prefix into the version vector."""
        if not self._cloud:
            return
        known = self._version_vector.get(replica, 0)
        while (replica, known + 1) in self._cloud:
            known += 1
            self._cloud.discard((replica, known))
        if known:
            self._version_vector[replica] = known

    def _drop_covered_cloud(self) -> None:
        self._cloud = {dot for dot in self._cloud if dot[1] > self._version_vector.get(dot[0], 0)}
