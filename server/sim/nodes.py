"""Simulated processes: a node shell hosting the real gossip, membership, ring and node cores over a
durable in-memory disk; a proxy shell hosting the real proxy core; and a client that counts what was
acknowledged. Only what node_service.py and proxy_service.py do around the cores is re-done here."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import msgpack

from crdt import ShoppingList
from protocol.messages import ErrorCode, Kind, Message, error, reply
from server.gossip import Claim, Gossip, GossipMessage, Outgoing, Sync, Watcher, rumour_of
from server.membership import MemberRecord, Membership
from server.node_core import Effect, Handoff, NodeCore, Publish, Respond, Send
from server.proxy_core import ProxyCore, ProxyEffect, ToClient, ToNode
from server.ring import Ring, RingHolder

if TYPE_CHECKING:
    from server.sim.cluster import SimCluster

NEVER = float("inf")
CORE_TICK = 0.02  # node_service.TICK
HANDOFF_EVERY = 0.5  # node_service.HANDOFF_EVERY
HANDOFF_TIMEOUT = 2.0  # node_service._deliver_hints
DISK_LATENCY = 0.001


def message_size(message: Message) -> int:
    """Return the bytes a request or reply takes on the wire (header fields plus body, roughly)."""
    return 24 + len(message.request_id) + len(msgpack.packb(message.fields)) + len(message.body)


@dataclass
class Disk:
    """What survives a restart: stored lists and hints (PostgreSQL in the real node)."""

    lists: dict[str, ShoppingList] = field(default_factory=dict)
    hints: dict[int, tuple[str, str, bytes]] = field(default_factory=dict)
    hint_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def hint_counts(self) -> dict[str, int]:
        """Return how many hints are held per owner."""
        counts: dict[str, int] = {}
        for owner, _, _ in self.hints.values():
            counts[owner] = counts.get(owner, 0) + 1
        return counts

    def holds(self, list_id: str, item: str) -> bool:
        """Return whether this disk's copy of `list_id` has `item`."""
        stored = self.lists.get(list_id)
        return stored is not None and item in stored


class SimNode:
    """One incarnation of a node process; `cluster` carries its messages and schedules its timers."""

    def __init__(
        self, cluster: SimCluster, node_id: str, incarnation: int, seeds: list[str], disk: Disk
    ) -> None:
        self.cluster = cluster
        self.node_id = node_id
        self.disk = disk
        self.up = True
        now = cluster.queue.now
        record = MemberRecord(node_id, f"sim://{node_id}", f"sim://{node_id}/pub", incarnation)
        self.membership = Membership(record, now)
        chooser = random.Random(f"{cluster.seed}:{node_id}:{incarnation}")
        self.gossip = Gossip(self.membership, seeds, chooser, now, cluster.gossip_settings)
        self.ring = RingHolder(cluster.ring_for([node_id]))
        self.core = NodeCore(node_id, cluster.config, self.membership, lambda: self.ring.ring)
        self.handoff = Handoff()
        self._wake = NEVER
        self._members_in_ring = 1
        self._core_tick_due = False
        self._handoff_waiting: dict[str, set[str]] = {}
        self._ids = itertools.count(1)

    def start(self) -> None:
        """Begin the gossip and hint-delivery timers."""
        self._reschedule()
        self.cluster.queue.after(HANDOFF_EVERY, f"handoff {self.node_id}", self._handoff_round)

    def know(self, table: GossipMessage) -> None:
        """Load a member table at start (a static bootstrap, all members alive: `table_sync(records)`,
        built once and shared, as every node loads the same one)."""
        self._after_gossip(self.gossip.on_message(self.cluster.queue.now, self.node_id, table))

    # ----- gossip ----------------------------------------------------------------------------------

    def on_gossip(self, sender: str, message: GossipMessage) -> None:
        """A gossip message arrived."""
        if self.up:
            self._after_gossip(self.gossip.on_message(self.cluster.queue.now, sender, message))

    def _wake_up(self, when: float) -> None:
        if self.up and when == self._wake:
            self._wake = NEVER
            self._after_gossip(self.gossip.tick(self.cluster.queue.now))

    def _after_gossip(self, out: list[Outgoing]) -> None:
        for outgoing in out:
            self.cluster.send_gossip(self.node_id, outgoing.to, outgoing.message)
        if len(self.membership.table) != self._members_in_ring:  # the table only grows
            members = self.membership.members()
            self._members_in_ring = len(members)
            self.ring.change(lambda _: self.cluster.ring_for(members))
        self._reschedule()

    def _reschedule(self) -> None:
        when = self.gossip.wake_at()
        if when < self._wake:
            self._wake = when
            self.cluster.queue.at(when, f"wake {self.node_id}", lambda: self._wake_up(when))

    # ----- requests --------------------------------------------------------------------------------

    def on_request(self, origin: object, request: Message) -> None:
        """A client request (WRITE or READ) arrived from a proxy."""
        if not self.up:
            return
        now = self.cluster.queue.now
        handler = self.core.on_write if request.kind is Kind.WRITE else self.core.on_read
        self.apply(handler(now, origin, request))

    def on_replica_request(self, sender: str, message: Message) -> None:
        """Another node's coordinator asked this node to store or fetch a copy."""
        if self.up:
            answer = self.serve(message)
            self.cluster.send_reply(self.node_id, sender, answer)

    def on_reply(self, sender: str, answer: Message) -> None:
        """A replica answered one of this node's sub-requests (or a hint delivery)."""
        if not self.up:
            return
        if self._hint_delivered(sender, answer):
            return
        self.apply(self.core.on_reply(self.cluster.queue.now, sender, answer))

    def on_unreachable(self, node: str, request_id: str) -> None:
        """A sub-request found no live connection to `node`."""
        if self.up and not self._hint_delivered(node, error(request_id, ErrorCode.UNAVAILABLE, "down")):
            self.apply(self.core.on_unreachable(self.cluster.queue.now, node, request_id))

    def serve(self, message: Message) -> Message:
        """Do a replica's part (node_service._replica): store a copy or a hint, or return the copy."""
        if message.kind is Kind.FETCH:
            state = self.disk.lists.get(message.list_id, ShoppingList("sim-replica"))
            return reply(message, Kind.STATE, state.to_bytes())
        hint_for = message.fields.get("hint_for")
        if isinstance(hint_for, str) and hint_for != self.node_id:
            self.disk.hints[next(self.disk.hint_ids)] = (hint_for, message.list_id, message.body)
        else:
            stored = self.disk.lists.setdefault(message.list_id, ShoppingList("sim-replica"))
            stored.merge(ShoppingList.from_bytes(message.body, "sim-replica"))
        return reply(message, Kind.OK)

    def apply(self, effects: list[Effect]) -> None:
        """Carry out the node core's effects."""
        for effect in effects:
            if isinstance(effect, Respond):
                self.cluster.respond(self.node_id, effect.origin, effect.message)
            elif isinstance(effect, Send):
                self._send(effect)
            elif isinstance(effect, Publish):
                self.cluster.published += 1
        self._schedule_core_tick()

    def _send(self, effect: Send) -> None:
        if effect.node == self.node_id:
            message = effect.message
            self.cluster.queue.after(DISK_LATENCY, f"disk {self.node_id}", lambda: self._local(message))
        else:
            self.cluster.send_request(self.node_id, effect.node, effect.message)

    def _local(self, message: Message) -> None:
        if self.up:
            self.apply(self.core.on_reply(self.cluster.queue.now, self.node_id, self.serve(message)))

    def _schedule_core_tick(self) -> None:
        if self.core.pending() and not self._core_tick_due:
            self._core_tick_due = True
            self.cluster.queue.after(CORE_TICK, f"tick {self.node_id}", self._core_tick)

    def _core_tick(self) -> None:
        self._core_tick_due = False
        if self.up:
            self.apply(self.core.tick(self.cluster.queue.now))

    # ----- hinted handoff (node_service._handoff_loop) ----------------------------------------------

    def _handoff_round(self) -> None:
        if not self.up:
            return
        for owner in self.handoff.due(self.disk.hint_counts(), self.membership):
            self._deliver_hints(owner)
        self.cluster.queue.after(HANDOFF_EVERY, f"handoff {self.node_id}", self._handoff_round)

    def _deliver_hints(self, owner: str) -> None:
        """Send every hint held for `owner`; each is deleted when acknowledged."""
        waiting: set[str] = set()
        for hint_id, (hint_owner, list_id, body) in sorted(self.disk.hints.items()):
            if hint_owner == owner:
                request_id = f"h{hint_id}:{next(self._ids)}"
                waiting.add(request_id)
                message = Message(Kind.REPLICATE, request_id, {"list": list_id}, body)
                self.cluster.send_request(self.node_id, owner, message)
        self._handoff_waiting[owner] = waiting
        generation = self._handoff_waiting[owner]
        self.cluster.queue.after(
            HANDOFF_TIMEOUT,
            f"handoff-timeout {self.node_id}",
            lambda: self._handoff_timeout(owner, generation),
        )

    def _hint_delivered(self, sender: str, answer: Message) -> bool:
        waiting = self._handoff_waiting.get(sender)
        if waiting is None or answer.request_id not in waiting:
            return False
        waiting.discard(answer.request_id)
        if answer.kind is Kind.OK:
            del self.disk.hints[int(answer.request_id[1:].split(":")[0])]
        if not waiting:
            del self._handoff_waiting[sender]
            self.handoff.step(sender, "done")
        return True

    def _handoff_timeout(self, owner: str, generation: set[str]) -> None:
        if self._handoff_waiting.get(owner) is generation:
            del self._handoff_waiting[owner]
            self.handoff.step(owner, "failed")

    def pending_hints(self) -> int:
        """Return how many hints this node's disk holds."""
        return len(self.disk.hints)


def table_sync(records: list[MemberRecord]) -> GossipMessage:
    """Return a SYNC holding `records`, every one alive."""
    return Sync(tuple(rumour_of(record, Claim.ALIVE) for record in records), 0, False)


class SimProxy:
    """A proxy shell around the real proxy core and the real gossip watcher (proxy_service.py): it asks
    nodes for the member table each gossip round, a digest first, and builds the ring from it."""

    def __init__(self, cluster: SimCluster, proxy_id: str, replicas: int, seeds: list[str]) -> None:
        self.cluster = cluster
        self.proxy_id = proxy_id
        now = cluster.queue.now
        self.membership = Membership(None, now)
        chooser = random.Random(f"{cluster.seed}:{proxy_id}")
        self.watcher = Watcher(self.membership, seeds, chooser, now, cluster.gossip_settings)
        self._ring: Ring | None = None
        self.core = ProxyCore(self.membership, lambda: self._ring, replicas=replicas)
        self.answers: dict[object, Callable[[Message], None]] = {}
        self._tick_due = False

    def start(self) -> None:
        """Begin the gossip rounds."""
        self._round()

    def on_gossip(self, sender: str, message: GossipMessage) -> None:
        """A node sent the member table."""
        self.watcher.on_message(self.cluster.queue.now, sender, message)
        members = self.membership.ring_members()
        if members and (self._ring is None or self._ring.nodes() != members):
            self._ring = self.cluster.ring_for(members)

    def request(self, origin: object, message: Message, answer: Callable[[Message], None]) -> None:
        """A client request arrives; `answer` gets the reply."""
        self.answers[origin] = answer
        self.apply(self.core.on_request(self.cluster.queue.now, origin, message))

    def on_reply(self, node: str, message: Message) -> None:
        """A node answered a forwarded request."""
        self.apply(self.core.on_reply(self.cluster.queue.now, node, message))

    def on_unreachable(self, node: str, request_id: str) -> None:
        """A forward found no live connection."""
        self.apply(self.core.on_unreachable(self.cluster.queue.now, node, request_id))

    def apply(self, effects: list[ProxyEffect]) -> None:
        """Carry out the proxy core's effects."""
        for effect in effects:
            if isinstance(effect, ToNode):
                self.cluster.forward(self.proxy_id, effect.node, effect.message)
            elif isinstance(effect, ToClient):
                self.answers.pop(effect.origin)(effect.message)
        if self.core.in_flight() and not self._tick_due:
            self._tick_due = True
            self.cluster.queue.after(CORE_TICK, f"tick {self.proxy_id}", self._tick)

    def _tick(self) -> None:
        self._tick_due = False
        self.apply(self.core.tick(self.cluster.queue.now))

    def _round(self) -> None:
        for outgoing in self.watcher.tick(self.cluster.queue.now):
            self.cluster.send_gossip(self.proxy_id, outgoing.to, outgoing.message)
        when = self.watcher.wake_at()
        self.cluster.queue.at(when, f"gossip {self.proxy_id}", self._round)


@dataclass
class Acked:
    """A write the client saw acknowledged."""

    list_id: str
    item: str
    at: float


class SimClient:
    """Writes one new item at a time to random lists through a proxy, at a Poisson rate."""

    def __init__(self, cluster: SimCluster, name: str, proxy: SimProxy, rate: float, lists: int) -> None:
        self.cluster = cluster
        self.name = name
        self.proxy = proxy
        self.rate = rate
        self.lists = lists
        self.random = random.Random(f"{cluster.seed}:{name}")
        self.acked: list[Acked] = []
        self.refused = 0
        self.sent = 0
        self.copies: dict[str, ShoppingList] = {}  # the client's own replica of each list it writes
        self.stop_at = NEVER

    def start(self, stop_at: float) -> None:
        """Write until `stop_at` (virtual seconds)."""
        self.stop_at = stop_at
        self._schedule()

    def _schedule(self) -> None:
        self.cluster.queue.after(self.random.expovariate(self.rate), f"client {self.name}", self._write)

    def _write(self) -> None:
        if self.cluster.queue.now >= self.stop_at:
            return
        self.sent += 1
        list_id = f"list-{self.random.randrange(self.lists)}"
        item = f"{self.name}-{self.sent}"
        delta = self.copies.setdefault(list_id, ShoppingList(self.name)).add_item(item)
        request = Message(Kind.WRITE, f"{self.name}:{self.sent}", {"list": list_id}, delta.to_bytes())
        self.proxy.request(request.request_id, request, lambda answer: self._answered(answer, list_id, item))
        self._schedule()

    def _answered(self, answer: Message, list_id: str, item: str) -> None:
        if answer.kind is Kind.OK:
            self.acked.append(Acked(list_id, item, self.cluster.queue.now))
        else:
            self.refused += 1
