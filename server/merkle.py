"""Digest trees for anti-entropy: per ring partition, a fixed-shape hash tree over the lists a node holds,
updated in O(depth) on every write (Merkle trees as in Dynamo, DeCandia et al. 2007, section 4.7).

Shape: the partition's slice of the SHA-256 keyspace is cut into FANOUT**DEPTH leaf buckets by the bits
after the partition prefix; an inner node covers FANOUT consecutive buckets. A node's hash is the XOR of
`entry_hash(list_id, digest)` over every list below it, so an update touches one value per level and two
trees with the same content have the same hashes whatever order the writes came in. XOR is fine here
because the input is not adversarial (replicas of one cluster) and every entry is keyed by its list id.

A list's digest is itself an XOR of hashes of its canonical parts (`list_digest`): the header record and
one record per item, so a store can update it from just the items a write touched.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

KEYSPACE = 2**256
FANOUT = 16
DEPTH = 2
LEAVES = FANOUT**DEPTH
HASH_BYTES = 8
"""64-bit hashes: they travel as msgpack integers in message headers (which carry no binary)."""
EMPTY = 0


def part_hash(record: bytes) -> int:
    """Return the 128-bit hash of one canonical record (a list header or an item record)."""
    return int.from_bytes(hashlib.blake2b(record, digest_size=HASH_BYTES).digest(), "big")


def list_digest(header: bytes, items: Iterable[bytes]) -> int:
    """Return the digest of a list stored as `header` plus `items` records: equal states, equal digests."""
    digest = part_hash(header)
    for record in items:
        digest ^= part_hash(record)
    return digest


def entry_hash(list_id: str, digest: int) -> int:
    """Return what one list contributes to the tree: its id and digest hashed together (so two lists with
    equal contents never cancel out)."""
    data = list_id.encode() + b"\x00" + digest.to_bytes(HASH_BYTES, "big")
    return int.from_bytes(hashlib.blake2b(data, digest_size=HASH_BYTES).digest(), "big")


def position(list_id: str) -> int:
    """Return `list_id`'s place on the ring (the same SHA-256 position the ring uses)."""
    return int.from_bytes(hashlib.sha256(list_id.encode()).digest(), "big")


@dataclass(frozen=True)
class Place:
    """Where a list sits: its partition and its leaf bucket inside the partition."""

    partition: int
    leaf: int


def place_of(list_id: str, partitions: int) -> Place:
    """Return the partition and leaf bucket of `list_id` in a ring of `partitions`."""
    scaled = position(list_id) * partitions
    return Place(scaled // KEYSPACE, (scaled % KEYSPACE) * LEAVES // KEYSPACE)


def node_index(leaf: int, level: int) -> int:
    """Return the index, at `level` (0 = root, DEPTH = leaves), of the tree node above bucket `leaf`."""
    span: int = FANOUT ** (DEPTH - level)
    return leaf // span


def children_of(level: int, index: int) -> range:
    """Return the indexes, at `level + 1`, of the children of node (`level`, `index`)."""
    return range(index * FANOUT, (index + 1) * FANOUT)


@dataclass
class _Partition:
    levels: list[dict[int, int]] = field(default_factory=lambda: [{} for _ in range(DEPTH + 1)])
    buckets: dict[int, dict[str, int]] = field(default_factory=dict)
    count: int = 0


class DigestTree:
    """The digest trees of every partition one node holds lists in. Sparse: empty nodes are absent and
    hash to EMPTY."""

    def __init__(self, partitions: int) -> None:
        if partitions < 1:
            raise ValueError("a tree needs at least one partition")
        self.partitions = partitions
        self._trees: dict[int, _Partition] = {}
        self._places: dict[str, Place] = {}

    def __len__(self) -> int:
        return len(self._places)

    def __contains__(self, list_id: object) -> bool:
        return list_id in self._places

    def update(self, list_id: str, digest: int | None) -> None:
        """Record that `list_id` now has `digest` (None: this node no longer holds it)."""
        place = self._places.get(list_id) or place_of(list_id, self.partitions)
        old = self.digest(list_id)
        if old == digest:
            return
        tree = self._trees.setdefault(place.partition, _Partition())
        bucket = tree.buckets.setdefault(place.leaf, {})
        change = (entry_hash(list_id, old) if old is not None else 0) ^ (
            entry_hash(list_id, digest) if digest is not None else 0
        )
        for level in range(DEPTH + 1):
            nodes = tree.levels[level]
            index = node_index(place.leaf, level)
            value = nodes.get(index, EMPTY) ^ change
            if value == EMPTY:
                nodes.pop(index, None)
            else:
                nodes[index] = value
        if digest is None:
            del bucket[list_id]
            del self._places[list_id]
            tree.count -= 1
            if not bucket:
                del tree.buckets[place.leaf]
            if tree.count == 0:
                del self._trees[place.partition]
        else:
            if old is None:
                tree.count += 1
                self._places[list_id] = place
            bucket[list_id] = digest

    def digest(self, list_id: str) -> int | None:
        """Return the digest recorded for `list_id`, or None if this node holds no such list."""
        place = self._places.get(list_id)
        if place is None:
            return None
        return self._trees[place.partition].buckets[place.leaf][list_id]

    def hash_at(self, partition: int, level: int, index: int) -> int:
        """Return the hash of tree node (`level`, `index`) of `partition` (EMPTY when nothing is below)."""
        tree = self._trees.get(partition)
        return tree.levels[level].get(index, EMPTY) if tree else EMPTY

    def root(self, partition: int) -> int:
        """Return the root hash of `partition`."""
        return self.hash_at(partition, 0, 0)

    def children(self, partition: int, level: int, index: int) -> list[int]:
        """Return the FANOUT hashes of the children of node (`level`, `index`)."""
        return [self.hash_at(partition, level + 1, child) for child in children_of(level, index)]

    def bucket(self, partition: int, leaf: int) -> dict[str, int]:
        """Return {list id: digest} for every list in leaf bucket `leaf` of `partition`."""
        tree = self._trees.get(partition)
        return dict(tree.buckets.get(leaf, {})) if tree else {}

    def held_partitions(self) -> list[int]:
        """Return the partitions this node holds at least one list in, sorted."""
        return sorted(self._trees)

    def count(self, partition: int) -> int:
        """Return how many lists this node holds in `partition`."""
        tree = self._trees.get(partition)
        return tree.count if tree else 0

    def entries_under(self, partition: int, level: int, index: int) -> dict[str, int]:
        """Return {list id: digest} for every list below tree node (`level`, `index`) of `partition`."""
        tree = self._trees.get(partition)
        if not tree:
            return {}
        span: int = FANOUT ** (DEPTH - level)
        first, last = index * span, (index + 1) * span
        found: dict[str, int] = {}
        for leaf, bucket in tree.buckets.items():
            if first <= leaf < last:
                found.update(bucket)
        return found

    def lists_in(self, partition: int) -> Iterator[str]:
        """Yield the ids of every list held in `partition`."""
        tree = self._trees.get(partition)
        if tree:
            for bucket in list(tree.buckets.values()):
                yield from list(bucket)

    def list_ids(self) -> list[str]:
        """Return the id of every list held, sorted."""
        return sorted(self._places)
