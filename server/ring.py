"""The consistent-hashing ring: Q equal partitions of the SHA-256 keyspace assigned to nodes (Dynamo,
DeCandia et al. 2007, partitioning strategy 3), and preference lists of N distinct nodes clockwise."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

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
        return self.partition_successors(self.partition_of(key))

    def partition_successors(self, start: int) -> list[str]:
        """Return every distinct node in clockwise order from partition `start`."""
        seen: list[str] = []
        for step in range(self.partitions):
            owner = self.owners[(start + step) % self.partitions]
            if owner not in seen:
                seen.append(owner)
        return seen

    def preference_list(self, key: str, replicas: int) -> list[str]:
        """Return the first `replicas` distinct nodes clockwise from `key` (fewer if the ring is smaller)."""
        return self.successors(key)[:replicas]

    def partition_preference_list(self, partition: int, replicas: int) -> list[str]:
        """Return the first `replicas` distinct nodes clockwise from `partition`: its owners."""
        owners: list[str] = []
        for step in range(self.partitions):
            owner = self.owners[(partition + step) % self.partitions]
            if owner not in owners:
                owners.append(owner)
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
    owners = list(ring.owners)
    counts = Counter(owners)
    share = len(owners) // (len(counts) + 1)
    for _ in range(share):
        richest = max(sorted(counts), key=lambda name: counts[name])
        index = _steal_index(owners, richest, node)
        owners[index] = node
        counts[richest] -= 1
        counts[node] += 1
    return Ring(tuple(owners))


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


def _steal_index(owners: list[str], victim: str, thief: str) -> int:
    """Pick the victim's partition whose neighbours are least often the thief (spreads the thief out,
    which keeps preference lists distinct)."""
    size = len(owners)
    best, best_score = -1, 3
    for index, owner in enumerate(owners):
        if owner != victim:
            continue
        score = (owners[index - 1] == thief) + (owners[(index + 1) % size] == thief)
        if score < best_score:
            best, best_score = index, score
            if score == 0:
                break
    return best


def build_ring(nodes: Iterable[str], partitions: int = DEFAULT_PARTITIONS) -> Ring:
    """Return the ring every member derives from the same member set: nodes join in sorted order."""
    ordered = sorted(set(nodes))
    if not ordered:
        raise ValueError("a ring needs at least one node")
    ring = empty_ring(ordered[0], partitions)
    for node in ordered[1:]:
        ring = with_node(ring, node)
    return ring


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
