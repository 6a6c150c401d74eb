"""The consistent-hashing ring: Q equal partitions of the SHA-256 keyspace assigned to nodes (Dynamo,
DeCandia et al. 2007, partitioning strategy 3) by consistent hashing with bounded loads, and preference
lists of N distinct nodes clockwise."""

from __future__ import annotations

import bisect
import hashlib
import math
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
    """Return the ring of `ring`'s members plus `node` (the same ring every member derives from that set).
    Adding a present node returns the ring unchanged."""
    if node in ring.owners:
        return ring
    return build_ring([*ring.nodes(), node], ring.partitions)


def without_node(ring: Ring, node: str) -> Ring:
    """Return the ring of `ring`'s members without `node`."""
    remaining = [name for name in ring.nodes() if name != node]
    if not remaining:
        raise ValueError("cannot remove the last node of a ring")
    return build_ring(remaining, ring.partitions)


# Placement is a pure function of the member set, so every process derives the same ring. Each node
# puts tokens on a 64-bit circle (hashes of "node#i"), and each partition prefers the nodes whose
# tokens follow its midpoint clockwise, nearest first: consistent hashing with virtual nodes, where a
# join only takes partitions for the new node and a leave only gives the leaver's away. Alone that
# leaves loads Poisson-spread (about +-25% at 16 partitions per node), so two passes bound them, in
# one global order of (distance, partition, node): each partition goes to its nearest node below the
# upper bound, then each node below the lower bound takes its nearest partitions from nodes above it
# (consistent hashing with bounded loads, Mirrokni, Thorup and Zadimoghaddam 2018). The bounds cost
# moves: a partition turned away by a full node displaces another, so a join moves about 1.0-1.2 times
# the optimum at 500+ partitions per node and about 2 times at 16 (docs/scale.md measures it).
_TOKEN_SPACE = 2**64
_TOKENS = 128  # per node, whatever the ring's size: a count that depended on n would move every token
_CANDIDATES = 8  # nodes each partition ranks; enough that a partition almost never finds all full
BALANCE = 0.10  # every node owns within this fraction of Q / n (or floor/ceil of it, if wider)


def build_ring(nodes: Iterable[str], partitions: int = DEFAULT_PARTITIONS) -> Ring:
    """Return the ring every member derives from the same member set (in any order).
    Raises ValueError for an empty set or fewer than one partition."""
    members = sorted(set(nodes))
    if not members:
        raise ValueError("a ring needs at least one node")
    if partitions < 1:
        raise ValueError("a ring needs at least one partition")
    if len(members) == 1:
        return empty_ring(members[0], partitions)
    preferences = _preferences(members, partitions)
    lower, upper = load_bounds(partitions, len(members))
    owners = [-1] * partitions
    load = [0] * len(members)
    for packed in preferences:
        partition, node = (packed >> _NODE_BITS) & _PARTITION_MASK, packed & _NODE_MASK
        if owners[partition] < 0 and load[node] < upper:
            owners[partition] = node
            load[node] += 1
    _place_turned_away(owners, preferences, load, upper)
    for packed in preferences:
        partition, node = (packed >> _NODE_BITS) & _PARTITION_MASK, packed & _NODE_MASK
        owner = owners[partition]
        if load[node] < lower and owner != node and load[owner] > lower:
            owners[partition] = node
            load[node] += 1
            load[owner] -= 1
    return Ring(tuple(members[owner] for owner in owners))


def load_bounds(partitions: int, nodes: int) -> tuple[int, int]:
    """Return the fewest and most partitions one of `nodes` nodes may own: within BALANCE of the fair
    share, widened to its floor and ceiling where that band holds no whole number."""
    fair = partitions / nodes
    lower = min(partitions // nodes, math.ceil(fair * (1 - BALANCE)))
    upper = max(-(-partitions // nodes), math.floor(fair * (1 + BALANCE)))
    return lower, upper


_NODE_BITS = 24
_NODE_MASK = (1 << _NODE_BITS) - 1
_PARTITION_BITS = 24
_PARTITION_MASK = (1 << _PARTITION_BITS) - 1


def _preferences(members: list[str], partitions: int) -> list[int]:
    """Return, sorted, each partition's nearest distinct nodes clockwise as (distance, partition, node
    index) packed into one int (ints sort several times faster than tuples): the one global order both
    passes of build_ring follow."""
    if partitions > _PARTITION_MASK or len(members) > _NODE_MASK:
        raise ValueError("a ring holds at most 2**24 partitions and 2**24 nodes")
    tokens = sorted(
        (_token(node, index) << _NODE_BITS) | number
        for number, node in enumerate(members)
        for index in range(_TOKENS)
    )
    positions = [token >> _NODE_BITS for token in tokens]
    holders = [token & _NODE_MASK for token in tokens]
    wanted = min(_CANDIDATES, len(members))
    total = len(tokens)
    shift = _NODE_BITS + _PARTITION_BITS
    preferences: list[int] = []
    append = preferences.append
    step = 0
    for partition in range(partitions):
        midpoint = (2 * partition + 1) * _TOKEN_SPACE // (2 * partitions)
        step = bisect.bisect_left(positions, midpoint, step)
        seen: set[int] = set()
        index = step
        while len(seen) < wanted:
            node = holders[index % total]
            if node not in seen:
                seen.add(node)
                distance = (positions[index % total] - midpoint) % _TOKEN_SPACE
                append((distance << shift) | (partition << _NODE_BITS) | node)
            index += 1
    preferences.sort()
    return preferences


def _token(node: str, index: int) -> int:
    """Return the circle position of `node`'s `index`th token."""
    return int.from_bytes(hashlib.blake2b(f"{node}#{index}".encode(), digest_size=8).digest(), "big")


def _place_turned_away(owners: list[int], preferences: list[int], load: list[int], upper: int) -> None:
    """Give each partition that every node it ranks turned away (all full) to the least loaded of them."""
    ranked: dict[int, list[int]] = {}
    for packed in preferences:
        partition = (packed >> _NODE_BITS) & _PARTITION_MASK
        if owners[partition] < 0:
            ranked.setdefault(partition, []).append(packed & _NODE_MASK)
    for partition in sorted(ranked):
        node = min(ranked[partition], key=lambda number: load[number])
        if load[node] >= upper:  # all it ranks are full: the least loaded node anywhere has room
            node = min(range(len(load)), key=lambda number: load[number])
        owners[partition] = node
        load[node] += 1


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
