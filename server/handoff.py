"""Ownership handoff (sans-io): when nodes join or leave, the ring moves partitions; this plans which
partitions a node exchanges with which peer, tracks the partitions it must give away, and says when it may
drop them. Moving data is anti-entropy in PUSH mode (anti_entropy.py), so a handoff interrupted by a crash
resumes by itself: after a restart the node still holds the data, compares again, and sends only what the
new owner still lacks.

A node hands a partition off when it holds lists in it but is not among its N owners any more: after a
join (the newcomer took the partition), during a leave (a leaving node owns nothing), or after hints were
handed back to a node that has since lost the partition.

Rules for one partition being handed off (PARTITION_TRANSITIONS is the table):
  HOLDING   --confirmed(some owners)--> HOLDING     an owner acknowledged every list this node sent it
  HOLDING   --confirmed(all owners)---> DROPPABLE   every owner has it all: the local copy may go
  DROPPABLE --changed------------------> HOLDING     a late write moved the partition's root: send again
  HOLDING   --changed------------------> HOLDING     (confirmations made at the old root are forgotten)
  DROPPABLE --dropped------------------> MOVED
  any       --owned-------------------> MOVED       the ring gave the partition back to this node
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from server.anti_entropy import Finished, Mode
from server.ring import Ring


class PartitionState(StrEnum):
    """Where handing off one partition stands."""

    HOLDING = "holding"
    DROPPABLE = "droppable"
    MOVED = "moved"


PARTITION_TRANSITIONS: dict[tuple[PartitionState, str], PartitionState] = {
    (PartitionState.HOLDING, "confirmed_some"): PartitionState.HOLDING,
    (PartitionState.HOLDING, "confirmed_all"): PartitionState.DROPPABLE,
    (PartitionState.DROPPABLE, "changed"): PartitionState.HOLDING,
    (PartitionState.HOLDING, "changed"): PartitionState.HOLDING,
    (PartitionState.DROPPABLE, "dropped"): PartitionState.MOVED,
    **{(state, "owned"): PartitionState.MOVED for state in PartitionState},
}


def next_partition_state(state: PartitionState, event: str) -> PartitionState:
    """Return the state after `event`; pairs missing from the table leave the state unchanged."""
    return PARTITION_TRANSITIONS.get((state, event), state)


@functools.lru_cache(maxsize=8)
def partition_owners(ring: Ring, replicas: int) -> tuple[tuple[str, ...], ...]:
    """Return the owners (preference list) of every partition of `ring`, computed once per ring."""
    return tuple(tuple(ring.partition_preference_list(p, replicas)) for p in range(ring.partitions))


def exchange_plan(
    ring: Ring, me: str, replicas: int, held: Iterable[int], is_up: Callable[[str], bool]
) -> dict[str, dict[int, Mode]]:
    """Return, per live peer, the partitions to compare with it: TWO_WAY for partitions both own, PUSH
    for partitions this node holds lists in but does not own (to each of their owners)."""
    plan: dict[str, dict[int, Mode]] = {}
    held_set = set(held)
    for partition, owners in enumerate(partition_owners(ring, replicas)):
        if me in owners:
            for peer in owners:
                if peer != me and is_up(peer):
                    plan.setdefault(peer, {})[partition] = Mode.TWO_WAY
        elif partition in held_set:
            for peer in owners:
                if is_up(peer):
                    plan.setdefault(peer, {})[partition] = Mode.PUSH
    return plan


def owned_partitions(ring: Ring, me: str, replicas: int) -> list[int]:
    """Return the partitions `me` is one of the N owners of."""
    return [p for p, owners in enumerate(partition_owners(ring, replicas)) if me in owners]


@dataclass
class _Outgoing:
    state: PartitionState = PartitionState.HOLDING
    confirmed: dict[str, int] = field(default_factory=dict)  # owner -> root it confirmed


@dataclass
class Progress:
    """Partitions and lists moved, for `status` and the join/leave commands."""

    partitions_to_send: int = 0
    partitions_sent: int = 0
    lists_sent: int = 0
    partitions_to_receive: int = 0
    partitions_received: int = 0

    def to_wire(self) -> dict[str, int]:
        """Return the counters as a msgpack-ready map."""
        return dict(self.__dict__)


class HandoffTracker:
    """Tracks one node's outgoing partitions (held, not owned) and incoming ones (owned, not yet
    compared with a co-owner since this process started or joined)."""

    def __init__(self, me: str, replicas: int) -> None:
        self.me = me
        self.replicas = replicas
        self._outgoing: dict[int, _Outgoing] = {}
        self._incoming: set[int] = set()
        self._received: set[int] = set()
        self.progress = Progress()

    def update(self, ring: Ring, held: Iterable[int], roots: Callable[[int], int]) -> None:
        """Re-derive the outgoing and incoming partitions from the current ring and held partitions."""
        held_set = set(held)
        owned = set(owned_partitions(ring, self.me, self.replicas))
        for partition in list(self._outgoing):
            if partition in owned or partition not in held_set:
                self._outgoing[partition].state = next_partition_state(
                    self._outgoing[partition].state, "owned"
                )
                del self._outgoing[partition]
        for partition in sorted(held_set - owned):
            if partition not in self._outgoing:
                self._outgoing[partition] = _Outgoing()
                self.progress.partitions_to_send += 1
            outgoing = self._outgoing[partition]
            root = roots(partition)
            if any(value != root for value in outgoing.confirmed.values()):
                outgoing.confirmed = {o: r for o, r in outgoing.confirmed.items() if r == root}
                outgoing.state = next_partition_state(outgoing.state, "changed")
        new_incoming = owned - self._incoming - self._received
        self._incoming |= new_incoming
        self._incoming &= owned
        self.progress.partitions_to_receive = len(self._incoming) + len(self._received & owned)
        self.progress.partitions_received = len(self._received & owned)

    def on_finished(self, ring: Ring, finished: Finished, roots: Callable[[int], int]) -> None:
        """Account for a finished exchange: owners that confirmed pushed partitions, incoming ones synced."""
        self.progress.lists_sent += finished.lists_handed_off
        for partition, root in finished.pushed_partitions.items():
            outgoing = self._outgoing.get(partition)
            if outgoing is None or roots(partition) != root:
                continue
            outgoing.confirmed[finished.peer] = root
            owners = set(partition_owners(ring, self.replicas)[partition])
            event = "confirmed_all" if owners <= set(outgoing.confirmed) else "confirmed_some"
            outgoing.state = next_partition_state(outgoing.state, event)
        for partition in finished.synced_partitions:
            if partition in self._incoming:
                self._incoming.discard(partition)
                self._received.add(partition)
        self.progress.partitions_received = len(self._received)

    def droppable(self) -> dict[int, int]:
        """Return {partition: root} for partitions every owner confirmed at the current root."""
        return {
            partition: next(iter(outgoing.confirmed.values()))
            for partition, outgoing in sorted(self._outgoing.items())
            if outgoing.state is PartitionState.DROPPABLE and outgoing.confirmed
        }

    def dropped(self, partition: int) -> None:
        """The shell deleted this node's copy of `partition`."""
        outgoing = self._outgoing.pop(partition, None)
        if outgoing is not None:
            next_partition_state(outgoing.state, "dropped")
            self.progress.partitions_sent += 1

    def outgoing(self) -> list[int]:
        """Return the partitions still to hand off."""
        return sorted(self._outgoing)

    def incoming(self) -> list[int]:
        """Return owned partitions not yet compared with any co-owner."""
        return sorted(self._incoming)

    def status(self) -> dict[str, Any]:
        """Return the handoff view for `status`."""
        return {
            **self.progress.to_wire(),
            "outgoing": len(self._outgoing),
            "incoming": len(self._incoming),
        }
