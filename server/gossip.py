"""Scalable gossip membership (sans-io): SWIM probing with indirect probes and suspicion (Das, Gupta and
Motivala 2002), news piggybacked on probes, and digest-first anti-entropy of the member table, so a quiet
cluster costs each node O(1) messages and bytes per round whatever its size. Time and randomness are inputs.

Rumour precedence (one member's claims; the higher one wins everywhere, so tables merge deterministically):
  higher incarnation wins; at equal incarnation DEAD > SUSPECT > ALIVE
  only a member raises its own incarnation: hearing itself suspected or declared dead, it refutes
Probe rules, per round of `interval` seconds:
  PING `probes_per_round` members (SWIM pings 1; 2 halve the detection tail), round robin over a
  shuffled list of all of them (a member declared dead that answers learns it and refutes: that is how
  the halves of a healed partition find each other);
  no ACK within `probe_timeout` -> PING_REQ to `indirect_probes` others, who ping it for us (not for
  members already declared dead); still no ACK when the round ends -> SUSPECT
  SUSPECT for `suspicion_rounds` rounds without a refutation -> DEAD
  every PING and ACK carries the sender's table digest and a few recent rumours; a digest that still
  differs after the rumours are applied starts a SYNC (the whole table, both ways) at most once per
  `sync_rounds` rounds
A process that is not a member (a proxy) keeps the table with `Watcher`: a digest-only SYNC to
`watcher_asks` members each round, answered with the whole table when the digests differ and with
the digest alone when they agree (the answer also tells the watcher that member is alive).
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import msgpack

from server.membership import Evidence, MemberRecord, Membership


class Claim(IntEnum):
    """What a rumour says about a member; at equal incarnation the larger claim wins."""

    ALIVE = 0
    SUSPECT = 1
    DEAD = 2


CLAIM_EVIDENCE = {
    Claim.ALIVE: Evidence.HEARTBEAT,
    Claim.SUSPECT: Evidence.UNREACHABLE,
    Claim.DEAD: Evidence.DECLARED_DEAD,
}
"""How a winning rumour moves the member's liveness in `Membership`."""


@dataclass(frozen=True)
class Rumour:
    """One member's record and the claim about it, with the keys every merge and send reads, computed
    once: `precedence` decides which of two rumours about one member wins, `fingerprint` is a 64-bit hash
    (a table's digest is the XOR of its rumours' fingerprints), `wire_size` the msgpack bytes."""

    record: MemberRecord
    claim: Claim
    precedence: tuple[int, int] = field(init=False, compare=False, repr=False)
    fingerprint: int = field(init=False, compare=False, repr=False)
    wire_size: int = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        record = self.record
        text = f"{record.node_id}|{record.endpoint}|{record.publish}|{record.key}|{record.leaving:d}"
        text += f"|{record.incarnation}|{int(self.claim)}"
        fingerprint = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
        object.__setattr__(self, "precedence", (record.incarnation, int(self.claim)))
        object.__setattr__(self, "fingerprint", fingerprint)
        object.__setattr__(self, "wire_size", len(msgpack.packb(self.to_wire())))

    def to_wire(self) -> list[Any]:
        """Return the rumour as a msgpack-ready list."""
        return [*self.record.to_wire(), int(self.claim)]


_RUMOURS: dict[tuple[MemberRecord, Claim], Rumour] = {}
_MAX_RUMOURS = 65_536


def rumour_of(record: MemberRecord, claim: Claim) -> Rumour:
    """Return the rumour (record, claim), one shared object per value (rumours are immutable, and equal
    ones met again, as in a SYNC, are then recognised by identity before any comparison)."""
    key = (record, claim)
    rumour = _RUMOURS.get(key)
    if rumour is None:
        if len(_RUMOURS) >= _MAX_RUMOURS:
            _RUMOURS.clear()
        rumour = _RUMOURS[key] = Rumour(record, claim)
    return rumour


@dataclass(frozen=True)
class Ping:
    """Are you alive? Carries the sender's digest and recent rumours."""

    seq: int
    digest: int
    news: tuple[Rumour, ...]


@dataclass(frozen=True)
class Ack:
    """`about` is alive (sent by it, or relayed by whoever pinged it for the asker)."""

    seq: int
    about: str
    digest: int
    news: tuple[Rumour, ...]


@dataclass(frozen=True)
class PingRequest:
    """Please ping `target` for me and relay its ACK under `seq`."""

    seq: int
    target: str
    news: tuple[Rumour, ...]


@dataclass(frozen=True)
class Sync:
    """The sender's whole table; `answer` asks the receiver to send its own back if they still differ."""

    rumours: tuple[Rumour, ...]
    digest: int
    answer: bool


GossipMessage = Ping | Ack | PingRequest | Sync


def wire_size(message: GossipMessage) -> int:
    """Return the msgpack size of `message` (as `wire_form` packs it), from its rumours' cached sizes."""
    rest: list[Any]
    if isinstance(message, Sync):
        rumours, rest = message.rumours, ["sync", [], message.digest, message.answer]
    elif isinstance(message, Ping):
        rumours, rest = message.news, ["ping", message.seq, message.digest, []]
    elif isinstance(message, Ack):
        rumours, rest = message.news, ["ack", message.seq, message.about, message.digest, []]
    else:
        rumours, rest = message.news, ["ping_req", message.seq, message.target, []]
    count = len(rumours)
    array_header = 1 if count < 16 else 3 if count < 65536 else 5
    return len(msgpack.packb(rest)) - 1 + array_header + _rumours_size(rumours)


_SIZES: dict[int, tuple[tuple[Rumour, ...], int]] = {}


def _rumours_size(rumours: tuple[Rumour, ...]) -> int:
    """Return the summed wire size of `rumours`; a whole table (a SYNC's, sent again and again while
    the table stays the same) is summed once per tuple object, held here so its id is not reused."""
    if len(rumours) < 64:
        return sum(r.wire_size for r in rumours)
    known = _SIZES.get(id(rumours))
    if known is not None and known[0] is rumours:
        return known[1]
    if len(_SIZES) >= 4096:
        _SIZES.clear()
    size = sum(r.wire_size for r in rumours)
    _SIZES[id(rumours)] = (rumours, size)
    return size


def wire_form(message: GossipMessage) -> list[Any]:
    """Return `message` as a msgpack-ready list (what a shell would send; its size is the traffic)."""
    if isinstance(message, Ping):
        return ["ping", message.seq, message.digest, [r.to_wire() for r in message.news]]
    if isinstance(message, Ack):
        return ["ack", message.seq, message.about, message.digest, [r.to_wire() for r in message.news]]
    if isinstance(message, PingRequest):
        return ["ping_req", message.seq, message.target, [r.to_wire() for r in message.news]]
    return ["sync", [r.to_wire() for r in message.rumours], message.digest, message.answer]


@dataclass(frozen=True)
class Outgoing:
    """Send `message` to `to` (a member id, or a seed address while no member is known)."""

    to: str
    message: GossipMessage


@dataclass(frozen=True)
class GossipSettings:
    """Protocol timing: `interval` is one round (the heartbeat interval); the rest are in rounds or s."""

    interval: float = 0.2
    probe_timeout: float = 0.08
    probes_per_round: int = 2
    indirect_probes: int = 3
    suspicion_rounds: int = 3
    retransmit_factor: int = 3
    news_per_message: int = 32
    sync_rounds: int = 5
    watcher_asks: int = 8
    """Members a `Watcher` asks per round: every member of a small ring (a join or a death is seen one
    round trip after any member knows it), a constant few of a large one."""


@dataclass
class _Probe:
    target: str
    seq: int
    sent_at: float
    acked: bool = False
    asked_others: bool = False


@dataclass
class _Relay:
    asker: str
    asker_seq: int
    target: str


class _News:
    """Members whose rumour is still to be piggybacked, each with the sends it has left. `take` returns
    those with the most sends left (ties by member id) and counts the send: the same choice as sorting
    every entry by (-left, member), kept in per-count sorted lists instead, because during churn there
    are hundreds of entries and every message takes a few."""

    def __init__(self) -> None:
        self._left: dict[str, int] = {}
        self._by_left: dict[int, list[str]] = {}

    def __bool__(self) -> bool:
        return bool(self._left)

    def __len__(self) -> int:
        return len(self._left)

    def put(self, node: str, left: int) -> None:
        """Give `node`'s rumour `left` more sends (replacing what it had)."""
        old = self._left.get(node)
        if old is not None:
            self._unfile(node, old)
        self._left[node] = left
        bisect.insort(self._by_left.setdefault(left, []), node)

    def take(self, count: int) -> list[str]:
        """Return up to `count` members, most sends left first, and take one send from each."""
        chosen: list[str] = []
        taken: list[tuple[int, list[str]]] = []
        for left in sorted(self._by_left, reverse=True):
            bucket = self._by_left[left]
            first = bucket[: count - len(chosen)]
            del bucket[: len(first)]  # a bucket's first members are the ones taken: one slice each
            if not bucket:
                del self._by_left[left]
            taken.append((left, first))
            chosen += first
            if len(chosen) == count:
                break
        for left, nodes in taken:  # filed one lower only now, so none is taken twice
            if left <= 1:
                for node in nodes:
                    del self._left[node]
                continue
            for node in nodes:
                self._left[node] = left - 1
            lower = self._by_left.setdefault(left - 1, [])
            lower += nodes
            lower.sort()
        return chosen

    def _unfile(self, node: str, left: int) -> None:
        bucket = self._by_left[left]
        del bucket[bisect.bisect_left(bucket, node)]
        if not bucket:
            del self._by_left[left]


@dataclass
class _Counters:
    probes: int = 0
    suspected: Counter[str] = field(default_factory=Counter)
    refutations: int = 0
    syncs: int = 0


@dataclass
class _Rounds:
    next_round: float
    last_sync: float = -math.inf
    last_seed_ask: float = -math.inf
    order: list[str] = field(default_factory=list)


class Gossip:
    """One node's gossip: owns the rumour table and drives `membership`'s liveness from it."""

    def __init__(
        self,
        membership: Membership,
        seeds: Iterable[str],
        chooser: random.Random,
        now: float,
        settings: GossipSettings | None = None,
    ) -> None:
        if membership.me is None:
            raise ValueError("gossip needs a member record of its own")
        self.membership = membership
        self.me = membership.me.node_id
        self.seeds = [seed for seed in seeds if seed != self.me]
        self._unmet_seeds = list(self.seeds)
        self.random = chooser
        self.settings = settings or GossipSettings()
        self.rumours: dict[str, Rumour] = {}
        self.digest = 0
        self.news = _News()
        self.counters = _Counters()
        self._rounds = _Rounds(next_round=now + chooser.random() * self.settings.interval)
        self._probes: list[_Probe] = []
        self._relays: dict[int, _Relay] = {}
        self._suspicions: dict[str, float] = {}
        self._seq = 0
        self._alive_sorted: list[str] | None = None
        self._table: tuple[Rumour, ...] | None = None
        self._store(rumour_of(membership.me, Claim.ALIVE))

    # ----- events ----------------------------------------------------------------------------------

    def tick(self, now: float) -> list[Outgoing]:
        """Advance time: ask others after a silent probe, end rounds, time suspicions out."""
        out: list[Outgoing] = []
        for probe in self._probes:
            silent = not probe.acked and not probe.asked_others
            if silent and now >= probe.sent_at + self.settings.probe_timeout:
                out += self._ask_others(probe)
                probe.asked_others = True
        self._expire_suspicions(now)
        if now >= self._rounds.next_round:
            out += self._new_round(now)
        return out

    def wake_at(self) -> float:
        """Return the earliest time `tick` has something to do."""
        times = [self._rounds.next_round, *self._suspicions.values()]
        for probe in self._probes:
            if not probe.acked and not probe.asked_others:
                times.append(probe.sent_at + self.settings.probe_timeout)
        return min(times)

    def on_message(self, now: float, sender: str, message: GossipMessage) -> list[Outgoing]:
        """Handle a gossip message from `sender`; return what to send."""
        if isinstance(message, Sync):
            return self._on_sync(now, sender, message)
        self._learn(now, message.news)
        self.membership.observe(sender, Evidence.REPLY, now)
        if isinstance(message, Ping):
            ack = Ack(message.seq, self.me, self.digest, self._take_news())
            return [Outgoing(sender, ack)]
        if isinstance(message, PingRequest):
            return self._relay(sender, message)
        return self._on_ack(now, sender, message)

    def claim(self, node_id: str) -> Claim | None:
        """Return what this node's table says about `node_id` (None if unknown)."""
        rumour = self.rumours.get(node_id)
        return rumour.claim if rumour else None

    def view(self) -> dict[str, tuple[int, Claim]]:
        """Return the table as {member: (incarnation, claim)}: equal views mean agreement."""
        return {node: (r.record.incarnation, r.claim) for node, r in sorted(self.rumours.items())}

    def leave(self) -> None:
        """Mark this member as leaving; the news spreads like any other (a newer incarnation)."""
        if not self.rumours[self.me].record.leaving:
            self._store(Rumour(self.membership.leave(), Claim.ALIVE))

    # ----- probing ---------------------------------------------------------------------------------

    def _new_round(self, now: float) -> list[Outgoing]:
        for probe in self._probes:
            if not probe.acked:
                self._suspect(now, probe.target)
        self._probes = []
        following = self._rounds.next_round + self.settings.interval
        self._rounds.next_round = following if following > now else now + self.settings.interval
        out: list[Outgoing] = []
        for _ in range(self.settings.probes_per_round):
            target = self._next_target()
            if target is None:
                return self._sync_with_seed(now)
            if any(probe.target == target for probe in self._probes):
                continue  # a small cluster: the next pass came round to the same member
            self._seq += 1
            self._probes.append(_Probe(target, self._seq, now))
            self.counters.probes += 1
            out.append(Outgoing(target, Ping(self._seq, self.digest, self._take_news())))
        return out + self._ask_an_unmet_seed(now)

    def _next_target(self) -> str | None:
        """Return the next member to probe: a fresh shuffle of every other member each pass."""
        if not self._rounds.order:
            order = sorted(node for node in self.rumours if node != self.me)
            self.random.shuffle(order)
            self._rounds.order = order
        return self._rounds.order.pop() if self._rounds.order else None

    def _ask_others(self, probe: _Probe) -> list[Outgoing]:
        if self.claim(probe.target) is Claim.DEAD:
            return []
        helpers = [node for node in self._alive_others() if node != probe.target]
        chosen = self.random.sample(helpers, min(self.settings.indirect_probes, len(helpers)))
        return [Outgoing(node, PingRequest(probe.seq, probe.target, self._take_news())) for node in chosen]

    def _alive_others(self) -> list[str]:
        """Return the other members claimed alive, sorted (remembered until the table changes)."""
        if self._alive_sorted is None:
            self._alive_sorted = sorted(
                node for node, r in self.rumours.items() if node != self.me and r.claim is Claim.ALIVE
            )
        return self._alive_sorted

    def _relay(self, asker: str, request: PingRequest) -> list[Outgoing]:
        self._seq += 1
        self._relays[self._seq] = _Relay(asker, request.seq, request.target)
        if len(self._relays) > 64:  # relays whose target never answered: forget the oldest
            del self._relays[min(self._relays)]
        return [Outgoing(request.target, Ping(self._seq, self.digest, self._take_news()))]

    def _on_ack(self, now: float, sender: str, ack: Ack) -> list[Outgoing]:
        relay = self._relays.pop(ack.seq, None)
        if relay is not None and relay.target == ack.about:
            return [Outgoing(relay.asker, Ack(relay.asker_seq, ack.about, self.digest, self._take_news()))]
        for probe in self._probes:
            if probe.seq == ack.seq and probe.target == ack.about:
                probe.acked = True
        self.membership.observe(ack.about, Evidence.REPLY, now)
        if sender == ack.about and ack.digest != self.digest:
            return self._maybe_sync(now, sender)
        return []

    # ----- suspicion -------------------------------------------------------------------------------

    def _suspect(self, now: float, node: str) -> None:
        rumour = self.rumours.get(node)
        if rumour is None or rumour.claim is not Claim.ALIVE:
            return
        self.counters.suspected[node] += 1
        self._learn(now, [rumour_of(rumour.record, Claim.SUSPECT)])

    def _expire_suspicions(self, now: float) -> None:
        for node, deadline in list(self._suspicions.items()):
            if now >= deadline:
                del self._suspicions[node]
                rumour = self.rumours[node]
                if rumour.claim is Claim.SUSPECT:
                    self._learn(now, [rumour_of(rumour.record, Claim.DEAD)])

    # ----- the table -------------------------------------------------------------------------------

    def _learn(self, now: float, rumours: Iterable[Rumour], *, bulk: bool = False) -> bool:
        """Apply rumours that beat ours; return whether any did. A `bulk` table (a SYNC) spreads further
        only what updates a member we knew: a joiner loading the table has nothing new to tell."""
        changed: list[Rumour] = []
        refuted = False
        me, known = self.me, self.rumours.get
        for rumour in rumours:
            node = rumour.record.node_id
            current = known(node)
            if current is rumour:  # the very rumour we hold (a SYNC of an agreeing table is mostly these)
                continue
            if node == me:
                refuted |= self._hear_about_myself(rumour)
                continue
            if current is not None and rumour.precedence <= current.precedence:
                continue
            self._store(rumour, spread=current is not None or not bulk)
            changed.append(rumour)
        if changed:
            self._apply_to_membership(now, changed)
        return refuted or bool(changed)

    def _hear_about_myself(self, rumour: Rumour) -> bool:
        mine = self.rumours[self.me]
        if rumour.claim is Claim.ALIVE or rumour.record.incarnation < mine.record.incarnation:
            return False
        self.counters.refutations += 1
        record = self.membership.reincarnate(rumour.record.incarnation + 1)
        self._store(rumour_of(record, Claim.ALIVE))
        return True

    def _store(self, rumour: Rumour, *, spread: bool = True) -> None:
        node = rumour.record.node_id
        current = self.rumours.get(node)
        if current is not None:
            self.digest ^= current.fingerprint
        self.rumours[node] = rumour
        self.digest ^= rumour.fingerprint
        self._alive_sorted = self._table = None
        if spread:
            self.news.put(node, self.settings.retransmit_factor * math.ceil(math.log2(len(self.rumours) + 1)))

    def _apply_to_membership(self, now: float, rumours: list[Rumour]) -> None:
        apply_rumours(self.membership, now, rumours)
        for rumour in rumours:
            node = rumour.record.node_id
            self._suspicions.pop(node, None)
            if rumour.claim is Claim.SUSPECT:
                self._suspicions[node] = now + self.settings.suspicion_rounds * self.settings.interval

    def _take_news(self) -> tuple[Rumour, ...]:
        """Return the rumours sent least often so far (at most `news_per_message`), counting this send."""
        if not self.news:
            return ()
        return tuple(self.rumours[node] for node in self.news.take(self.settings.news_per_message))

    # ----- anti-entropy ----------------------------------------------------------------------------

    def _maybe_sync(self, now: float, peer: str) -> list[Outgoing]:
        if now - self._rounds.last_sync < self.settings.sync_rounds * self.settings.interval:
            return []
        self._rounds.last_sync = now
        self.counters.syncs += 1
        return [Outgoing(peer, self._sync_message(answer=True))]

    def _sync_with_seed(self, now: float) -> list[Outgoing]:
        if not self.seeds:
            return []
        self.counters.syncs += 1
        self._rounds.last_sync = now
        return [Outgoing(self.random.choice(sorted(self.seeds)), self._sync_message(answer=True))]

    def _ask_an_unmet_seed(self, now: float) -> list[Outgoing]:
        """Every few rounds, ask a seed that is not in the table yet for its digest (it answers with its
        table when they differ). Nodes that start together may each reach a different seed first and
        form rings that know nothing of each other; once every seed is a member, no ring can be apart
        (each probes the seeds, and a differing digest starts a sync), and this costs nothing."""
        if (
            not self._unmet_seeds
            or now - self._rounds.last_seed_ask < self.settings.sync_rounds * self.settings.interval
        ):
            return []
        self._rounds.last_seed_ask = now
        known = self.rumours
        self._unmet_seeds = [
            s for s in self._unmet_seeds if s not in known and self.membership.node_at(s) is None
        ]
        if not self._unmet_seeds:
            return []
        return [Outgoing(self.random.choice(self._unmet_seeds), Sync((), self.digest, answer=True))]

    def _sync_message(self, *, answer: bool) -> Sync:
        if self._table is None:  # remembered until the table changes
            self._table = tuple(r for _, r in sorted(self.rumours.items()))
        return Sync(self._table, self.digest, answer)

    def _on_sync(self, now: float, sender: str, sync: Sync) -> list[Outgoing]:
        self._learn(now, sync.rumours, bulk=True)
        if sync.answer and self.digest != sync.digest:
            return [Outgoing(sender, self._sync_message(answer=False))]
        if sync.answer and not sync.rumours:  # a watcher's digest-only ask: "same table", and alive
            return [Outgoing(sender, Sync((), self.digest, answer=False))]
        return []


def apply_rumours(membership: Membership, now: float, rumours: Iterable[Rumour]) -> None:
    """Store winning rumours' records in `membership` and move each member's liveness by its claim."""
    rumours = list(rumours)
    membership.on_gossip(now, {r.record.node_id: r.record for r in rumours})
    for rumour in rumours:
        membership.observe(rumour.record.node_id, CLAIM_EVIDENCE[rumour.claim], now)


class Watcher:
    """The gossip of a process that is not a member (a proxy): each round it sends `watcher_asks`
    members a SYNC holding only its table's digest; a member whose table differs answers with the whole
    table (the same anti-entropy members run among themselves), so a quiet watch costs O(1) per round.
    Liveness comes from the members' claims: a watcher never suspects anyone itself."""

    def __init__(
        self,
        membership: Membership,
        seeds: Iterable[str],
        chooser: random.Random,
        now: float,
        settings: GossipSettings | None = None,
    ) -> None:
        self.membership = membership
        self.seeds = sorted(seeds)
        self.random = chooser
        self.settings = settings or GossipSettings()
        self.rumours: dict[str, Rumour] = {}
        self.digest = 0
        self._next_round = now
        self._order: list[str] = []

    def tick(self, now: float) -> list[Outgoing]:
        """Start a round when one is due: ask members (or a seed, while none is alive) for news."""
        if now < self._next_round:
            return []
        self._next_round = now + self.settings.interval
        ask = Sync((), self.digest, answer=True)
        targets: list[str] = []
        for _ in range(self.settings.watcher_asks):
            target = self._next_target()
            if target is not None and target not in targets:
                targets.append(target)
        if not targets and self.seeds:
            targets = [self.random.choice(self.seeds)]
        return [Outgoing(target, ask) for target in targets]

    def wake_at(self) -> float:
        """Return when `tick` next has something to do."""
        return self._next_round

    def on_message(self, now: float, sender: str, message: GossipMessage) -> list[Outgoing]:
        """Take a member's answer to a SYNC (its table, or only its digest when the tables agree: either
        way the member is alive); a watcher ignores every other gossip message."""
        if isinstance(message, Sync):
            winners = []
            for rumour in message.rumours:
                node = rumour.record.node_id
                current = self.rumours.get(node)
                if current is None or rumour.precedence > current.precedence:
                    if current is not None:
                        self.digest ^= current.fingerprint
                    self.rumours[node] = rumour
                    self.digest ^= rumour.fingerprint
                    winners.append(rumour)
            apply_rumours(self.membership, now, winners)
            if sender in self.rumours:
                self.membership.observe(sender, Evidence.REPLY, now)
        return []

    def claim(self, node_id: str) -> Claim | None:
        """Return what the watched table says about `node_id` (None if unknown)."""
        rumour = self.rumours.get(node_id)
        return rumour.claim if rumour else None

    def _next_target(self) -> str | None:
        """Return the next member to ask, in a fresh shuffle of the members not declared dead each pass."""
        if not self._order:
            order = sorted(node for node, r in self.rumours.items() if r.claim is not Claim.DEAD)
            self.random.shuffle(order)
            self._order = order
        return self._order.pop() if self._order else None
