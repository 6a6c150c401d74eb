"""The consistent-hashing ring: Q equal partitions of the SHA-256 keyspace assigned to nodes (Dynamo,
DeCandia et al. 2007, partitioning strategy 3), and preference lists of N distinct nodes clockwise."""

from __future__ import annotations

import bisect
import hashlib
import heapq
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property

DEFAULT_PARTITIONS = 256
KEYSPACE = 2**256


@dataclass(frozen=True)
class Ring:
    """Partition i covers hashes [i*KEYSPACE/Q, (i+1)*KEYSPACE/Q) and belongs to owners[i]."""

    owners: tuple[str, ...]

    @property
    def partitions(self) -> int:
        """Return Q, the number of partitions."""
        return len(self.owners)

    def nodes(self) -> list[str]:
        """Return the distinct nodes that own partitions, sorted."""
        return sorted(set(self.owners))

    def partition_of(self, key: str) -> int:
        """Return the partition holding `key` (its SHA-256 position on the ring)."""
        position = int.from_bytes(hashlib.sha256(key.encode()).digest(), "big")
        return position * self.partitions // KEYSPACE

    def successors(self, key: str) -> list[str]:
        """Return every distinct node in clockwise order from `key`'s partition."""
        return list(self.successors_from(self.partition_of(key)))

    def iter_successors(self, key: str) -> Iterator[str]:
        """Yield the distinct nodes clockwise from `key`, stopping when the caller has enough."""
        return self.iter_successors_from(self.partition_of(key))

    def iter_successors_from(self, start: int) -> Iterator[str]:
        """Yield the distinct nodes clockwise from partition `start`, stopping when the caller has enough."""
        cached = self._successor_cache.get(start)
        if cached is not None:
            yield from cached
            return
        owners, size, distinct = self.owners, len(self.owners), self._distinct
        seen: set[str] = set()
        for step in range(size):
            owner = owners[(start + step) % size]
            if owner not in seen:
                seen.add(owner)
                yield owner
                if len(seen) == distinct:
                    return

    def preference_list(self, key: str, replicas: int) -> list[str]:
        """Return the first `replicas` distinct nodes clockwise from `key` (fewer if the ring is smaller)."""
        return self.partition_preference_list(self.partition_of(key), replicas)

    def successors_from(self, start: int) -> tuple[str, ...]:
        """Return the distinct nodes clockwise from partition `start` (remembered: the ring is immutable)."""
        cached = self._successor_cache.get(start)
        if cached is None:
            cached = self._successor_cache[start] = tuple(self.iter_successors_from(start))
        return cached

    @cached_property
    def _distinct(self) -> int:
        return len(set(self.owners))

    @cached_property
    def _successor_cache(self) -> dict[int, tuple[str, ...]]:
        return {}

    def partition_successors(self, start: int) -> list[str]:
        """Return every distinct node in clockwise order from partition `start`."""
        return list(self.successors_from(start))

    def partition_preference_list(self, partition: int, replicas: int) -> list[str]:
        """Return the first `replicas` distinct nodes clockwise from `partition`: its owners."""
        owners: list[str] = []
        for node in self.iter_successors_from(partition):
            owners.append(node)
            if len(owners) == replicas:
                break
        return owners

    def ownership(self) -> dict[str, float]:
        """Return each node's share of the keyspace (0..1)."""
        counts = Counter(self.owners)
        return {node: counts[node] / self.partitions for node in sorted(counts)}


def empty_ring(node: str, partitions: int = DEFAULT_PARTITIONS) -> Ring:
    """Return a ring where `node` owns all `partitions`."""
    if partitions < 1:
        raise ValueError("a ring needs at least one partition")
    return Ring(tuple(node for _ in range(partitions)))


def with_node(ring: Ring, node: str) -> Ring:
    """Return `ring` with `node` added, taking an equal share by stealing partitions from the most loaded
    nodes (so only about Q/n partitions move). Adding a present node returns the ring unchanged."""
    if node in ring.owners:
        return ring
    builder = _Builder(ring.owners)
    builder.add(node)
    return Ring(tuple(builder.owners))


class _Builder:
    """The owners of a ring being grown one node at a time, indexed so each steal is cheap."""

    def __init__(self, owners: Iterable[str]) -> None:
        self.owners = list(owners)
        self.positions: dict[str, list[int]] = {}
        for index, owner in enumerate(self.owners):
            self.positions.setdefault(owner, []).append(index)

    def add(self, node: str) -> None:
        """Give `node` Q // (n + 1) partitions, each taken from the node owning the most."""
        counts = Counter({name: len(indexes) for name, indexes in self.positions.items()})
        share = len(self.owners) // (len(counts) + 1)
        # A heap of (-count, name) finds the richest node, ties to the first name, as max(sorted(...))
        # would; entries whose count is out of date are skipped when they surface.
        richest_first = [(-count, name) for name, count in counts.items()]
        heapq.heapify(richest_first)
        cursors: dict[str, int] = {}
        stolen: list[int] = []
        for _ in range(share):
            richest = _pop_richest(richest_first, counts)
            if richest != node:  # the thief tied for richest would "steal" its own partition: no change
                victim_positions = self.positions[richest]
                index = _steal_index(self.owners, victim_positions, node, cursors, richest)
                self.owners[index] = node
                del victim_positions[bisect.bisect_left(victim_positions, index)]
                stolen.append(index)
                counts[richest] -= 1
                counts[node] += 1
                heapq.heappush(richest_first, (-counts[node], node))
            heapq.heappush(richest_first, (-counts[richest], richest))
        self.positions[node] = sorted(stolen)


def _pop_richest(richest_first: list[tuple[int, str]], counts: Counter[str]) -> str:
    """Pop and return the node owning the most partitions (the first name among equals)."""
    while True:
        negative_count, name = heapq.heappop(richest_first)
        if counts[name] == -negative_count:
            return name


def without_node(ring: Ring, node: str) -> Ring:
    """Return `ring` with `node`'s partitions given to the least loaded remaining nodes."""
    counts = Counter(name for name in ring.owners if name != node)
    if not counts:
        raise ValueError("cannot remove the last node of a ring")
    owners = list(ring.owners)
    for index, owner in enumerate(owners):
        if owner == node:
            poorest = min(sorted(counts), key=lambda name: counts[name])
            owners[index] = poorest
            counts[poorest] += 1
    return Ring(tuple(owners))


def _steal_index(
    owners: list[str], victim_positions: list[int], thief: str, cursors: dict[str, int], victim: str
) -> int:
    """Pick the victim's first partition whose neighbours are least often the thief (spreads the thief
    out, which keeps preference lists distinct); `victim_positions` are the victim's partitions, ascending.
    A neighbour of the thief stays one while the thief only gains partitions, so `cursors` remembers,
    per victim, how many leading partitions need no second look."""
    size = len(owners)

    def score(index: int) -> int:
        return (owners[index - 1] == thief) + (owners[(index + 1) % size] == thief)

    cursor = cursors.get(victim, 0)
    while cursor < len(victim_positions) and score(victim_positions[cursor]) > 0:
        cursor += 1
    cursors[victim] = cursor
    if cursor < len(victim_positions):
        return victim_positions[cursor]
    return min(victim_positions, key=score)  # every partition touches the thief: the first least bad


def build_ring(nodes: Iterable[str], partitions: int = DEFAULT_PARTITIONS) -> Ring:
    """Return the ring every member derives from the same member set: nodes join in sorted order."""
    ordered = sorted(set(nodes))
    if not ordered:
        raise ValueError("a ring needs at least one node")
    builder = _Builder(empty_ring(ordered[0], partitions).owners)
    for node in ordered[1:]:
        builder.add(node)
    return Ring(tuple(builder.owners))


class RingHolder:
    """Owns the live ring of one process; every change goes through `change` with a pure ring -> ring."""

    def __init__(self, ring: Ring) -> None:
        self._ring = ring

    @property
    def ring(self) -> Ring:
        """Return the current ring."""
        return self._ring

    def change(self, transform: Callable[[Ring], Ring]) -> Ring:
        """Apply `transform` to the current ring, keep and return the result."""
        self._ring = transform(self._ring)
        return self._ring
