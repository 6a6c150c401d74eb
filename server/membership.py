"""Gossip membership and failure detection (sans-io): a versioned member table that merges
deterministically, heartbeats, and a per-member liveness state machine. Time is an input.

Liveness rules (the transition table below is the only place they live):
  ALIVE   --quiet(suspect_after)--> SUSPECT   no heartbeat progress for a while
  ALIVE   --unreachable---------->  SUSPECT   a direct send failed (the socket has no live peer)
  SUSPECT --quiet(dead_after)---->  DEAD
  ALIVE/SUSPECT --declared_dead-->  DEAD      the cluster's gossip confirmed a suspicion (server.gossip)
  any     --heartbeat / reply---->  ALIVE     fresh evidence of life always wins
Only ALIVE members take requests; SUSPECT and DEAD ones are skipped (sloppy quorum covers them).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any


class Liveness(StrEnum):
    """What this process believes about a member right now (local, never gossiped)."""

    ALIVE = "alive"
    SUSPECT = "suspect"
    DEAD = "dead"


class Evidence(StrEnum):
    """What happened that may move a member's liveness."""

    HEARTBEAT = "heartbeat"
    REPLY = "reply"
    UNREACHABLE = "unreachable"
    QUIET_SUSPECT = "quiet_suspect"
    QUIET_DEAD = "quiet_dead"
    DECLARED_DEAD = "declared_dead"


TRANSITIONS: dict[tuple[Liveness, Evidence], Liveness] = {
    (Liveness.ALIVE, Evidence.QUIET_SUSPECT): Liveness.SUSPECT,
    (Liveness.ALIVE, Evidence.UNREACHABLE): Liveness.SUSPECT,
    (Liveness.SUSPECT, Evidence.QUIET_DEAD): Liveness.DEAD,
    (Liveness.SUSPECT, Evidence.UNREACHABLE): Liveness.SUSPECT,
    (Liveness.DEAD, Evidence.UNREACHABLE): Liveness.DEAD,
    (Liveness.ALIVE, Evidence.DECLARED_DEAD): Liveness.DEAD,
    (Liveness.SUSPECT, Evidence.DECLARED_DEAD): Liveness.DEAD,
    **{(state, Evidence.HEARTBEAT): Liveness.ALIVE for state in Liveness},
    **{(state, Evidence.REPLY): Liveness.ALIVE for state in Liveness},
}


def next_liveness(state: Liveness, evidence: Evidence) -> Liveness:
    """Return the state after `evidence`; pairs missing from the table leave the state unchanged."""
    return TRANSITIONS.get((state, evidence), state)


MAX_VERSION = 2**63 - 1
"""The highest incarnation or heartbeat a record may carry: a member refuting a claim at it still has a
higher one left that msgpack can carry (its integers end at 2**64 - 1)."""


@dataclass(frozen=True)
class MemberRecord:
    """One member as gossiped. (incarnation, heartbeat) orders versions: a restart raises the
    incarnation, every gossip round raises the heartbeat."""

    node_id: str
    endpoint: str
    publish: str
    incarnation: int
    heartbeat: int = 0
    leaving: bool = False
    """The member is handing its partitions off before it goes: the ring is built without it."""

    def version(self) -> tuple[int, int]:
        """Return the sort key that decides which of two records about one member wins."""
        return (self.incarnation, self.heartbeat)

    def to_wire(self) -> list[Any]:
        """Return the record as a msgpack-ready list."""
        wire: list[Any] = [self.node_id, self.endpoint, self.publish, self.incarnation, self.heartbeat]
        return [*wire, True] if self.leaving else wire

    @classmethod
    def from_wire(cls, value: object) -> MemberRecord:
        """Return the record encoded by `to_wire`. Raises ValueError (the sender's fault) on bad input."""
        if not isinstance(value, list) or len(value) not in (5, 6):
            raise ValueError("a member record is a list of 5 fields (6 when leaving)")
        node_id, endpoint, publish, incarnation, heartbeat = value[:5]
        leaving = value[5] if len(value) == 6 else False
        if type(leaving) is not bool:
            raise ValueError("a member's leaving flag must be a boolean")
        if not all(isinstance(text, str) and 0 < len(text) <= 200 for text in (node_id, endpoint, publish)):
            raise ValueError("member id and endpoints must be short strings")
        if not all(type(number) is int and 0 <= number <= MAX_VERSION for number in (incarnation, heartbeat)):
            raise ValueError(f"member incarnation and heartbeat must be integers from 0 to {MAX_VERSION}")
        return cls(node_id, endpoint, publish, incarnation, heartbeat, leaving)


def merge_tables(mine: dict[str, MemberRecord], theirs: dict[str, MemberRecord]) -> dict[str, MemberRecord]:
    """Return the union of two member tables, the higher version winning per member (deterministic,
    commutative, associative and idempotent: a join of the per-member max)."""
    merged = dict(mine)
    for node_id, record in theirs.items():
        current = merged.get(node_id)
        if current is None or _record_key(record) > _record_key(current):
            merged[node_id] = record
    return merged


def _record_key(record: MemberRecord) -> tuple[int, int, str, str, bool]:
    return (record.incarnation, record.heartbeat, record.endpoint, record.publish, record.leaving)


@dataclass
class _Watch:
    liveness: Liveness
    last_progress: float


class Membership:
    """One process's view of the cluster. Nodes own a record (`me`); proxies watch without one."""

    def __init__(
        self, me: MemberRecord | None, now: float, *, suspect_after: float = 1.0, dead_after: float = 3.0
    ) -> None:
        self.me = me
        self.suspect_after = suspect_after
        self.dead_after = dead_after
        self.table: dict[str, MemberRecord] = {me.node_id: me} if me else {}
        self._watches: dict[str, _Watch] = {me.node_id: _Watch(Liveness.ALIVE, now)} if me else {}

    def tick(self, now: float) -> None:
        """Advance time: raise our own heartbeat and let quiet members become suspect or dead."""
        if self.me is not None:
            self.me = replace(self.me, heartbeat=self.me.heartbeat + 1)
            self.table[self.me.node_id] = self.me
            self._watches[self.me.node_id] = _Watch(Liveness.ALIVE, now)
        for node_id, watch in self._watches.items():
            if self.me is not None and node_id == self.me.node_id:
                continue
            quiet = now - watch.last_progress
            if quiet >= self.dead_after:
                watch.liveness = next_liveness(watch.liveness, Evidence.QUIET_SUSPECT)
                watch.liveness = next_liveness(watch.liveness, Evidence.QUIET_DEAD)
            elif quiet >= self.suspect_after:
                watch.liveness = next_liveness(watch.liveness, Evidence.QUIET_SUSPECT)

    def on_gossip(self, now: float, records: dict[str, MemberRecord]) -> None:
        """Merge a peer's table; members whose version rose count as alive."""
        for node_id, record in records.items():
            current = self.table.get(node_id)
            if self.me is not None and node_id == self.me.node_id:
                continue  # only this process speaks for itself
            if current is None or record.version() > current.version():
                self.observe(node_id, Evidence.HEARTBEAT, now)
        mine = self.table.get(self.me.node_id) if self.me else None
        self.table = merge_tables(self.table, records)
        if mine is not None:
            self.table[mine.node_id] = mine

    def reincarnate(self, above: int) -> MemberRecord:
        """Raise our incarnation to `above` (if higher) and return our record: a member suspected or
        declared dead at its current incarnation refutes that with a newer one."""
        if self.me is None:
            raise ValueError("a watcher has no record to reincarnate")
        self.me = replace(self.me, incarnation=max(above, self.me.incarnation))
        self.table[self.me.node_id] = self.me
        return self.me

    def observe(self, node_id: str, evidence: Evidence, now: float) -> None:
        """Record direct evidence about `node_id` (a reply came back, or a send found no peer)."""
        watch = self._watches.setdefault(node_id, _Watch(Liveness.DEAD, now))
        watch.liveness = next_liveness(watch.liveness, evidence)
        if evidence in (Evidence.HEARTBEAT, Evidence.REPLY):
            watch.last_progress = now

    def liveness(self, node_id: str) -> Liveness:
        """Return what this process believes about `node_id` (unknown members count as dead)."""
        watch = self._watches.get(node_id)
        return watch.liveness if watch else Liveness.DEAD

    def is_up(self, node_id: str) -> bool:
        """Return whether `node_id` should be sent requests now."""
        return self.liveness(node_id) is Liveness.ALIVE

    def members(self) -> list[str]:
        """Return every known member id, sorted (the ring is built from this set)."""
        return sorted(self.table)

    def node_at(self, endpoint: str) -> str | None:
        """Return the id of the member whose request endpoint is `endpoint`, or None."""
        return next((node_id for node_id, record in self.table.items() if record.endpoint == endpoint), None)

    def ring_members(self) -> list[str]:
        """Return the members the ring is built from: every known member but those leaving, sorted."""
        return sorted(node_id for node_id, record in self.table.items() if not record.leaving)

    def leave(self) -> None:
        """Mark this process as leaving; the next gossip round tells everyone."""
        if self.me is not None and not self.me.leaving:
            self.me = replace(self.me, leaving=True, heartbeat=self.me.heartbeat + 1)
            self.table[self.me.node_id] = self.me

    def peers(self) -> list[MemberRecord]:
        """Return every known member but this process."""
        own = self.me.node_id if self.me else None
        return [record for node_id, record in sorted(self.table.items()) if node_id != own]

    def wire_table(self) -> list[list[Any]]:
        """Return the table as sent in a GOSSIP message."""
        return [record.to_wire() for _, record in sorted(self.table.items())]


def table_from_wire(value: object) -> dict[str, MemberRecord]:
    """Return the member table of a GOSSIP message. Raises ValueError (the sender's fault) on bad input."""
    if not isinstance(value, list) or len(value) > 1000:
        raise ValueError("`members` must be a list of at most 1000 records")
    records = [MemberRecord.from_wire(item) for item in value]
    return {record.node_id: record for record in records}
