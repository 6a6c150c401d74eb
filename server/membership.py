"""A process's view of the cluster's members (sans-io): their records as gossiped, and a per-member
liveness state machine that server.gossip drives from its rumours and the shells from their sockets.

Liveness rules (the transition table below is the only place they live):
  ALIVE   --unreachable---------->  SUSPECT   a direct send failed, or gossip suspects it
  ALIVE/SUSPECT --declared_dead-->  DEAD      the cluster's gossip confirmed a suspicion
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
    DECLARED_DEAD = "declared_dead"


TRANSITIONS: dict[tuple[Liveness, Evidence], Liveness] = {
    (Liveness.ALIVE, Evidence.UNREACHABLE): Liveness.SUSPECT,
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


@dataclass(frozen=True)
class MemberRecord:
    """One member as gossiped: where to send it requests (`endpoint`), where it publishes changes
    (`publish`), its CurveZMQ public key (`key`, Z85, "" while the transport is plain TCP). A restart or
    a refutation raises the incarnation, which orders records about one member."""

    node_id: str
    endpoint: str
    publish: str
    incarnation: int
    leaving: bool = False
    """The member is handing its partitions off before it goes: the ring is built without it."""
    key: str = ""
    """The member's CurveZMQ public key (Z85) that its endpoints serve with; "" in a plain-text cluster."""

    def to_wire(self) -> list[Any]:
        """Return the record as a msgpack-ready list (protocol.messages checks it on decode)."""
        return [self.node_id, self.endpoint, self.publish, self.incarnation, self.leaving, self.key]


class Membership:
    """One process's view of the cluster. Nodes own a record (`me`); proxies watch without one."""

    def __init__(self, me: MemberRecord | None, now: float) -> None:
        self.me = me
        self.table: dict[str, MemberRecord] = {me.node_id: me} if me else {}
        self._liveness: dict[str, Liveness] = {me.node_id: Liveness.ALIVE} if me else {}
        self.revoked: frozenset[str] = frozenset()
        """Public keys the cluster's admins revoked: members serving with one are no part of the ring."""

    def on_gossip(self, now: float, records: dict[str, MemberRecord]) -> None:
        """Store records that gossip found newer than ours (never one about this process: only it
        speaks for itself); a member first heard of, or at a higher incarnation, counts as alive."""
        own = self.me.node_id if self.me else None
        for node_id, record in records.items():
            if node_id == own:
                continue
            current = self.table.get(node_id)
            if current is None or record.incarnation > current.incarnation:
                self.observe(node_id, Evidence.HEARTBEAT, now)
            self.table[node_id] = record

    def reincarnate(self, above: int) -> MemberRecord:
        """Raise our incarnation to `above` (if higher) and return our record: a member suspected or
        declared dead at its current incarnation refutes that with a newer one."""
        if self.me is None:
            raise ValueError("a watcher has no record to reincarnate")
        self.me = replace(self.me, incarnation=max(above, self.me.incarnation))
        self.table[self.me.node_id] = self.me
        return self.me

    def leave(self) -> MemberRecord:
        """Mark this process as leaving (a newer incarnation, so the news beats the old record) and
        return our record."""
        if self.me is None:
            raise ValueError("a watcher has no record to mark leaving")
        if not self.me.leaving:
            self.me = replace(self.me, leaving=True, incarnation=self.me.incarnation + 1)
            self.table[self.me.node_id] = self.me
        return self.me

    def observe(self, node_id: str, evidence: Evidence, now: float) -> None:
        """Record evidence about `node_id` (a reply came back, a send found no peer, gossip's claim)."""
        self._liveness[node_id] = next_liveness(self._liveness.get(node_id, Liveness.DEAD), evidence)

    def liveness(self, node_id: str) -> Liveness:
        """Return what this process believes about `node_id` (unknown members count as dead)."""
        return self._liveness.get(node_id, Liveness.DEAD)

    def is_up(self, node_id: str) -> bool:
        """Return whether `node_id` should be sent requests now."""
        return self.liveness(node_id) is Liveness.ALIVE

    def members(self) -> list[str]:
        """Return every known member id, sorted."""
        return sorted(self.table)

    def node_at(self, endpoint: str) -> str | None:
        """Return the id of the member whose request endpoint is `endpoint`, or None."""
        return next((node_id for node_id, record in self.table.items() if record.endpoint == endpoint), None)

    def key_at(self, endpoint: str) -> str | None:
        """Return the public key of the member whose request or publish endpoint is `endpoint`, or None."""
        return next(
            (r.key for r in self.table.values() if endpoint in (r.endpoint, r.publish) and r.key), None
        )

    def member_keys(self) -> frozenset[str]:
        """Return the public keys of every member in the table (learnt from authenticated peers only)."""
        return frozenset(record.key for record in self.table.values() if record.key) - self.revoked

    def ring_members(self) -> list[str]:
        """Return the members the ring is built from: every known member but those leaving or revoked,
        sorted."""
        return sorted(
            node_id
            for node_id, record in self.table.items()
            if not record.leaving and not self.is_revoked(record)
        )

    def is_revoked(self, record: MemberRecord) -> bool:
        """Return whether `record` serves with a revoked key (never this process's own record)."""
        own = self.me.node_id if self.me else None
        return bool(self.revoked) and record.key in self.revoked and record.node_id != own

    def peers(self) -> list[MemberRecord]:
        """Return every known member but this process."""
        own = self.me.node_id if self.me else None
        return [record for node_id, record in sorted(self.table.items()) if node_id != own]
