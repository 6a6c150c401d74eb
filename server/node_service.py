"""The server node process: binds a ROUTER (requests) and a PUB (changes), runs the node core, gossip and
hinted handoff on asyncio, and stores lists in its own PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio
from zmq.auth.asyncio import AsyncioAuthenticator

from crdt import ShoppingList
from crdt.replica import new_replica_id
from protocol.endpoints import address_of, split_endpoint
from protocol.messages import (
    GOSSIP,
    ErrorCode,
    Kind,
    Message,
    ProtocolError,
    decode,
    encode,
    error,
    error_for_frames,
    reply,
    topic,
)
from server import sockets
from server.admission import Budget
from server.anti_entropy import Action, AntiEntropy, AskDigest, Repair, answer_digest
from server.gossip import Claim, Gossip, Outgoing
from server.gossip_wire import from_message, to_message
from server.handoff import HandoffTracker, exchange_plan
from server.keys import (
    MEMBERS_REREAD_SECONDS,
    NO_MEMBER_KEYS,
    KeyFileError,
    KeyPair,
    MemberKeys,
    load_members,
)
from server.links import Links
from server.log_throttle import Throttle
from server.membership import MemberRecord, Membership
from server.merkle import DigestTree
from server.node_core import Config, Effect, Handoff, NodeCore, Publish, Respond, Send
from server.ring import RingHolder, build_ring
from server.storage import CACHE_BYTES, MAX_BATCH, Storage

log = logging.getLogger("shoplist.node")

TICK = 0.02
HANDOFF_EVERY = 0.5
MAINTENANCE_EVERY = 0.05
SCRUB_BATCH = 100
"""Seconds between looks at the members file: an admin adds a new node's key without restarting."""
LEAVE_GRACE = 1.5
"""Seconds a leaving node waits, with nothing left to hand off, before it exits (lets the ring settle)."""
STORE_WORK = MAX_BATCH
"""Default cap on replica work in flight (stores, hints, fetches): one group commit's worth. The store's
four connections commit that many writes at once; more would only wait in memory for a connection."""
COORDINATING = sockets.PEER_HWM // 3
"""Default cap on writes and reads a node coordinates at once: each sends to N = 3 replicas, so this many
fit in one peer link's queue (PEER_HWM messages) without a send being dropped."""
LOG_EVERY = 10.0
"""Seconds between log lines about rejected messages: the first is logged, then one count per interval."""


@dataclass(frozen=True)
class NodeSettings:
    """How to run one node."""

    node_id: str
    endpoint: str
    publish: str
    seeds: tuple[str, ...]
    config: Config
    partitions: int = 256
    anti_entropy: bool = True
    exchange_every: float = 1.0
    repairs_per_second: float = 500.0
    scrub_every: float = 60.0
    """Seconds between scrub steps; each re-reads SCRUB_BATCH lists from disk into the digest tree."""
    joining: bool = False
    leave: bool = False
    keys: KeyPair | None = None
    """The node's own Curve key pair; None runs it in plain text (--insecure)."""
    members: MemberKeys = NO_MEMBER_KEYS
    """Public keys allowed to connect (nodes and proxies), besides those members announce in gossip, and
    the revoked ones, refused whoever announces them."""
    members_file: Path | None = None
    """Where `members` came from; read again when it changes."""
    max_store_work: int = STORE_WORK
    """Replica requests (replicate, fetch, the node's own share of a write or read) served at once; past
    it the node answers `unavailable` at once instead of queueing them in memory."""
    max_coordinating: int = COORDINATING
    """Writes and reads coordinated at once; past it a new one is answered `unavailable` at once."""
    cache_bytes: int = CACHE_BYTES
    """Estimated memory the storage may keep decoded lists in (see storage.CACHE_BYTES)."""


class NodeService:
    """One node: wires sockets, storage and the clock to the sans-io cores."""

    def __init__(self, settings: NodeSettings, storage: Storage) -> None:
        self.settings = settings
        self.storage = storage
        now = time.monotonic()
        own_key = settings.keys.public if settings.keys else ""
        me = MemberRecord(
            settings.node_id, settings.endpoint, settings.publish, time.time_ns() // 1000, key=own_key
        )
        self.membership = Membership(me, now)
        seeds = [address_of(seed) for seed in settings.seeds if address_of(seed) != settings.endpoint]
        self.gossip = Gossip(self.membership, seeds, random.Random(), now)
        self.ring = RingHolder(build_ring([settings.node_id], settings.partitions))
        self.core = NodeCore(settings.node_id, settings.config, self.membership, lambda: self.ring.ring)
        self.handoff = Handoff()
        self.hint_counts: dict[str, int] = {}
        self._ids = itertools.count(1)
        self.context = zmq.asyncio.Context()
        self.seed_keys = dict(split_endpoint(seed) for seed in settings.seeds)
        self.router = self._bound_socket(zmq.ROUTER)
        self.publisher = self._bound_socket(zmq.PUB, publisher=True)
        self.links = Links(
            self.context,
            self._on_link_reply,
            self._on_link_lost,
            keys=settings.keys,
            server_key=self._server_key,
        )
        self.authenticator: AsyncioAuthenticator | None = None
        self.member_keys = settings.members
        self.membership.revoked = settings.members.revoked
        self._refused: set[bytes] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.tree = DigestTree(settings.partitions)
        self.anti_entropy = AntiEntropy(
            self.tree,
            interval=settings.exchange_every,
            repairs_per_second=settings.repairs_per_second,
            burst=max(10.0, settings.repairs_per_second / 5),
            enabled=settings.anti_entropy,
        )
        self.handoff_out = HandoffTracker(settings.node_id, settings.config.replicas)
        self.storage.on_change = self.tree.update
        self.bytes_exchanged = 0
        self.messages_exchanged = 0
        self.started_at = now
        self.leaving_since: float | None = None
        self.joining = settings.joining
        self._dropping: set[int] = set()
        self._stop: asyncio.Event | None = None
        self._scrub_after = ""
        self._leave_wanted = False
        self._rerouting: set[str] = set()
        self._members_connected = 1
        self.store_work = Budget(settings.max_store_work)
        self.coordinating_refused = 0
        self._bad_messages = Throttle(LOG_EVERY)
        self._busy = Throttle(LOG_EVERY)
        self._hint_failures = Throttle(LOG_EVERY)

    async def prepare(self) -> None:
        """Load the digest tree from the stored lists and resume a leave or join cut short by a crash."""
        for list_id, digest in (await self.storage.scan_digests()).items():
            self.tree.update(list_id, digest)
        log.info(
            "digest tree holds %d lists in %d partitions", len(self.tree), len(self.tree.held_partitions())
        )
        if self.settings.joining:
            await self.storage.set_state("joining", "1")
        elif await self.storage.get_state("joining"):
            self.joining = True
            log.info("resuming an interrupted join")
        if self.settings.leave or await self.storage.get_state("leaving"):
            self.gossip.leave()  # before the first gossip, so the ring never takes this node back
            self._leave_wanted = True  # the handoff starts once a peer is known to take the partitions

    async def request_leave(self) -> bool:
        """Ask this node to hand every partition off and then exit; the wish is durable before this returns
        (a crash after it resumes the leave). Returns False when it cannot leave: it is the only node."""
        others = [node for node in self.membership.table if node != self.settings.node_id]
        if self.leaving_since is None and not others and not self._leave_wanted:
            return False
        if not self._leave_wanted:
            await self.storage.set_state("leaving", "1")
            self.gossip.leave()
            self._leave_wanted = True
        return True

    async def _start_leave(self) -> None:
        await self.storage.set_state("leaving", "1")  # again for --leave, which no request recorded
        self.gossip.leave()
        self.leaving_since = time.monotonic()
        self._rebuild_ring()
        log.info("leaving: handing %d partitions off", len(self.tree.held_partitions()))

    def _bound_socket(self, kind: int, *, publisher: bool = False) -> Any:
        configure = sockets.configure_publisher if publisher else sockets.configure
        socket = configure(self.context.socket(kind), hwm=sockets.PEER_HWM)
        return sockets.curve_server(socket, self.settings.keys, zap_domain=sockets.ZAP_DOMAIN)

    def _server_key(self, endpoint: str) -> str | None:
        """Return the public key to pin for a peer endpoint: its member record's, else its seed's."""
        key = self.membership.key_at(endpoint) or self.seed_keys.get(endpoint)
        return None if key in self.membership.revoked else key

    def callback(self, domain: str, key: bytes) -> bool:
        """ZAP: admit a client key if the members file lists it or an authenticated member announced it
        in gossip (a node that joined through a seed that lists it)."""
        text = key.decode("ascii", "replace")
        if text in self.member_keys.revoked:
            self._refuse_once(key, f"refused a connection from the revoked key {text}")
            return False
        if text in self.member_keys.allowed or text in self.membership.member_keys():
            return True
        self._refuse_once(key, f"refused a connection from an unknown key {text}")
        return False

    def _refuse_once(self, key: bytes, text: str) -> None:
        if key not in self._refused and len(self._refused) < 1000:
            self._refused.add(key)
            log.warning("%s", text)

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set."""
        if self.settings.keys is not None:
            self.authenticator = AsyncioAuthenticator(self.context)
            self.authenticator.configure_curve_callback(
                sockets.ZAP_DOMAIN.decode(), credentials_provider=self
            )
            self.authenticator.start()
        self.router.bind(self.settings.endpoint)
        self.publisher.bind(self.settings.publish)
        log.info(
            "node %s serving endpoint=%s publish=%s",
            self.settings.node_id,
            self.settings.endpoint,
            self.settings.publish,
        )
        self._stop = stop
        for seed in self.gossip.seeds:  # connect now: a DEALER drops what is sent before it is connected
            self.links.ensure(seed)
        loops = [
            self._serve(),
            self._tick_loop(),
            self._gossip_loop(),
            self._handoff_loop(),
            self._maintenance_loop(),
            self._scrub_loop(),
            self._members_loop(),
        ]
        tasks = [asyncio.create_task(loop) for loop in loops]
        await stop.wait()
        running = [*tasks, *self._tasks]  # spawned work too: none may touch a socket once it is closed
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        self.links.close()
        self.router.close(0)
        self.publisher.close(0)
        if self.authenticator is not None:
            self.authenticator.stop()
        self.context.term()

    # ----- inbound requests ------------------------------------------------------------------------

    async def _serve(self) -> None:
        while True:
            if self.membership.revoked:  # a revoked peer may hold a connection it opened before
                received = await self.router.recv_multipart(copy=False)
                if received[0].get("User-Id") in self.membership.revoked:
                    continue
                frames = [frame.bytes for frame in received]
            else:
                frames = await self.router.recv_multipart(copy=True)
            identity, payload = frames[0], frames[1:]
            try:
                message = decode(payload)
            except ProtocolError as problem:
                count = self._bad_messages.event(time.monotonic())
                if count:
                    log.warning(
                        "%d bad messages since the last such line; the latest from %s: %s (%s)",
                        count,
                        identity.hex(),
                        problem,
                        problem.code.value,
                    )
                self._answer(identity, error_for_frames(payload, problem))
                continue
            try:
                self._dispatch(identity, message)
            except Exception:
                log.exception("bug: handling %s failed", message.kind.value)
                self._answer(identity, error(message.request_id, ErrorCode.INTERNAL, "internal error"))

    def _dispatch(self, identity: bytes, message: Message) -> None:
        now = time.monotonic()
        kind = message.kind
        delta = _decoded(message.body) if kind in (Kind.WRITE, Kind.REPLICATE) else None
        if kind in (Kind.WRITE, Kind.REPLICATE) and delta is None:
            self._answer(
                identity, error(message.request_id, ErrorCode.BAD_STATE, "the body is not a list state")
            )
        elif kind in (Kind.WRITE, Kind.READ) and self.core.pending() >= self.settings.max_coordinating:
            self.coordinating_refused += 1
            self._answer(identity, self._busy_reply(message, "coordinating", self.settings.max_coordinating))
        elif kind is Kind.WRITE:
            self._apply(self.core.on_write(now, identity, message))
        elif kind is Kind.READ:
            self._apply(self.core.on_read(now, identity, message))
        elif kind in (Kind.REPLICATE, Kind.FETCH):
            refusal = _refused_hint(message, self.membership.table)
            if refusal is not None:
                self._answer(identity, refusal)
            elif not self.store_work.admit():
                self._answer(identity, self._busy_reply(message, "replica", self.store_work.limit))
            else:
                self._spawn(self._serve_replica(identity, message, delta))
        elif kind in GOSSIP:
            self._on_gossip(now, message, identity)
        elif kind is Kind.STATUS:
            self._answer(identity, reply(message, Kind.STATUS_REPLY, info=self.status()))
        elif kind is Kind.PING:
            self._answer(identity, reply(message, Kind.PONG))
        elif kind is Kind.DIGEST:
            try:
                fields = answer_digest(self.tree, message.fields.get("nodes"))
            except ValueError as problem:
                self._answer(identity, error(message.request_id, ErrorCode.BAD_REQUEST, str(problem)))
                return
            self._answer(identity, reply(message, Kind.DIGEST_REPLY, **fields))
        elif kind is Kind.LEAVE:
            self._spawn(self._serve_leave(identity, message))
        else:
            self._answer(
                identity,
                error(message.request_id, ErrorCode.BAD_REQUEST, f"a node does not take {kind.value}"),
            )

    async def _serve_leave(self, identity: bytes, message: Message) -> None:
        try:
            accepted = await self.request_leave()
        except Exception as problem:  # the environment's fault (database): the admin may retry
            log.error("cannot record the leave: %s", problem)
            self._answer(identity, error(message.request_id, ErrorCode.INTERNAL, "cannot record the leave"))
            return
        if accepted:
            self._answer(identity, reply(message, Kind.OK, handoff=self.handoff_status()))
        else:
            text = "the last node of a ring cannot leave it"
            self._answer(identity, error(message.request_id, ErrorCode.BAD_REQUEST, text))

    def _busy_reply(self, message: Message, work: str, limit: int) -> Message:
        """Return the `unavailable` answer to a request refused because `limit` `work` requests are in
        flight, logging the refusals at most once per LOG_EVERY seconds."""
        count = self._busy.event(time.monotonic())
        if count:
            log.warning(
                "busy: refused %d requests since the last such line (%d %s requests in flight)",
                count,
                limit,
                work,
            )
        text = f"node {self.settings.node_id} is busy: {limit} {work} requests in flight; retry later"
        return error(message.request_id, ErrorCode.UNAVAILABLE, text)

    async def _serve_replica(self, identity: bytes, message: Message, delta: ShoppingList | None) -> None:
        try:
            self._answer(identity, await self._replica(message, delta))
        finally:
            self.store_work.release()

    async def _replica(self, message: Message, delta: ShoppingList | None = None) -> Message:
        """Do a replica's part: store a copy or a hint, or return this node's copy. `delta` is the body
        when the caller already decoded it."""
        try:
            if message.kind is Kind.FETCH:
                state = await self.storage.read(message.list_id)
                return reply(message, Kind.STATE, state.to_bytes())
            hint_for = message.fields.get("hint_for")
            if isinstance(hint_for, str) and hint_for != self.settings.node_id:
                await self.storage.add_hint(hint_for, message.list_id, message.body)
                self.hint_counts[hint_for] = self.hint_counts.get(hint_for, 0) + 1
            else:
                if delta is None:
                    delta = ShoppingList.from_bytes(message.body, new_replica_id())
                await self.storage.merge(message.list_id, delta)
            return reply(message, Kind.OK)
        except Exception as problem:  # the environment's fault (database): the coordinator hints around us
            log.error("storage failed for %s list=%s: %s", message.kind.value, message.list_id, problem)
            return error(message.request_id, ErrorCode.INTERNAL, "storage failed on this node")

    def _on_gossip(self, now: float, message: Message, identity: bytes | None) -> None:
        """Hand a gossip message (checked by decode) to the core. Whatever the core sends back to the
        sender goes on the connection it came by (a proxy or a joiner may have no address we know)."""
        sender, gossip = from_message(message)
        self._after_gossip(self.gossip.on_message(now, sender, gossip), sender, identity)

    # ----- effects ---------------------------------------------------------------------------------

    def _apply(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Respond):
                self._answer(effect.origin, effect.message)
            elif isinstance(effect, Publish):
                frames = [
                    topic(effect.list_id),
                    *encode(Message(Kind.CHANGE, "-", {"list": effect.list_id}, effect.body)),
                ]
                sockets.try_send(self.publisher, frames)
            elif isinstance(effect, Send):
                self._send(effect)

    def _send(self, effect: Send) -> None:
        if effect.node == self.settings.node_id:
            if self.store_work.admit():
                self._spawn(self._local(effect.message))
            else:
                busy = self._busy_reply(effect.message, "replica", self.store_work.limit)
                self._apply(self.core.on_reply(time.monotonic(), self.settings.node_id, busy))
            return
        record = self.membership.table.get(effect.node)
        if record is None or not self.links.send(record.endpoint, effect.message):
            self._apply(self.core.on_unreachable(time.monotonic(), effect.node, effect.message.request_id))

    async def _local(self, message: Message) -> None:
        try:
            answer = await self._replica(message)
        finally:
            self.store_work.release()
        self._apply(self.core.on_reply(time.monotonic(), self.settings.node_id, answer))

    def _on_link_reply(self, endpoint: str, message: Message) -> None:
        now = time.monotonic()
        if message.kind in GOSSIP:
            self._on_gossip(now, message, None)
            return
        node = self.membership.node_at(endpoint) or endpoint
        self._apply(self.core.on_reply(now, node, message))

    def _on_link_lost(self, endpoint: str) -> None:
        node = self.membership.node_at(endpoint)
        if node is not None:
            log.info("lost the connection to node %s", node)
            self._apply(self.core.on_node_lost(time.monotonic(), node))

    def _answer(self, identity: object, message: Message) -> None:
        sockets.try_send(self.router, [identity, *encode(message)])

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        """Forget a spawned task, logging what it raised (every task handles its expected failures, so
        anything left is a bug) rather than leaving it to asyncio as an unretrieved exception."""
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("bug: a background task failed", exc_info=task.exception())

    # ----- time-driven work ------------------------------------------------------------------------

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            self._apply(self.core.tick(time.monotonic()))

    async def _gossip_loop(self) -> None:
        while True:
            now = time.monotonic()
            self._after_gossip(self.gossip.tick(now))
            await asyncio.sleep(min(max(self.gossip.wake_at() - now, 0.001), TICK))

    def _after_gossip(self, out: list[Outgoing], sender: str = "", identity: bytes | None = None) -> None:
        """Send what the gossip core asked for and rebuild the ring if the members changed."""
        for outgoing in out:
            message = to_message(outgoing.message, self.settings.node_id, f"g{next(self._ids)}")
            record = self.membership.table.get(outgoing.to)
            if identity is not None and outgoing.to == sender:
                self._answer(identity, message)
            elif record is not None:
                self.links.send(record.endpoint, message)
            elif outgoing.to in self.seed_keys:
                self.links.send(outgoing.to, message)
        if len(self.membership.table) != self._members_connected:  # the table only grows
            for record in self.membership.peers():
                self.links.ensure(record.endpoint)  # connected before the first probe, not by it
            self._members_connected = len(self.membership.table)
        self._rebuild_ring()

    def _rebuild_ring(self) -> None:
        """Build the ring from the members that are not leaving (a leaving node builds it without itself)."""
        members = self.membership.ring_members()
        if not members:
            return
        if self.ring.ring.nodes() != members:
            self.ring.change(lambda _: build_ring(members, self.settings.partitions))
            log.info("ring now has %d members: %s", len(members), " ".join(members))

    async def _handoff_loop(self) -> None:
        while True:
            await asyncio.sleep(HANDOFF_EVERY)
            try:
                self.hint_counts = await self.storage.hint_counts()
            except Exception as problem:  # database trouble: try again next round
                log.error("cannot count hints: %s", problem)
                continue
            for owner in self.handoff.due(self.hint_counts, self.membership):
                self._spawn(self._deliver_hints(owner))
            in_ring = set(self.membership.ring_members())
            for owner, count in sorted(self.hint_counts.items()):
                # A leaving node cannot wait for a down owner, and an owner that left never comes back.
                stranded = owner not in in_ring or (
                    self.leaving_since is not None and not self.membership.is_up(owner)
                )
                if count and stranded and owner not in self._rerouting:
                    self._rerouting.add(owner)
                    self._spawn(self._hints_to_current_owners(owner))

    async def _hints_to_current_owners(self, owner: str) -> None:
        """Give the hints held for `owner` to the live owners of each list in the current ring instead."""
        try:
            await self._reroute_hints(owner)
        except Exception as problem:  # database trouble: the next round tries again
            log.warning("rerouting hints for %s failed: %s", owner, problem)
        finally:
            self._rerouting.discard(owner)

    async def _reroute_hints(self, owner: str) -> None:
        for hint_id, list_id, body in await self.storage.hints_for(owner):
            ring = self.ring.ring
            targets = [
                node
                for node in ring.preference_list(list_id, self.settings.config.replicas)
                if node != self.settings.node_id and self.membership.is_up(node)
            ]
            acked = 0
            for node in targets:
                answer = await self._request(
                    node, Message(Kind.REPLICATE, f"h{next(self._ids)}", {"list": list_id}, body)
                )
                acked += answer is not None and answer.kind is Kind.OK
            if acked:
                await self.storage.delete_hints([hint_id])

    async def _deliver_hints(self, owner: str) -> None:
        """Hand every hint held for `owner` back to it, deleting each once acknowledged."""
        record = self.membership.table.get(owner)
        delivered = 0
        try:
            while record is not None:
                hints = await self.storage.hints_for(owner)
                if not hints:
                    break
                for hint_id, list_id, body in hints:
                    request = Message(Kind.REPLICATE, f"h{next(self._ids)}", {"list": list_id}, body)
                    answer = await self.links.request(record.endpoint, request, timeout=2.0)
                    if answer is None or answer.kind is not Kind.OK:
                        self.handoff.step(owner, "failed")
                        log.info("handoff to %s paused after %d hints", owner, delivered)
                        return
                    await self.storage.delete_hints([hint_id])
                    delivered += 1
            self.handoff.step(owner, "done")
            if delivered:
                log.info("handed %d hints back to %s", delivered, owner)
        except Exception as problem:  # database trouble (no connection in time): the next round retries
            self.handoff.step(owner, "failed")
            count = self._hint_failures.event(time.monotonic())
            if count:
                log.warning(
                    "handoff to %s paused after %d hints (%d failures): %s", owner, delivered, count, problem
                )

    # ----- ring maintenance: anti-entropy and ownership handoff ------------------------------------

    async def _maintenance_loop(self) -> None:
        while True:
            await asyncio.sleep(MAINTENANCE_EVERY)
            self._maintain(time.monotonic())
            self._flush_counts(time.monotonic())

    def _flush_counts(self, now: float) -> None:
        """Log the rejections held back by the throttles once their interval has passed."""
        if count := self._bad_messages.flush(now):
            log.warning("%d more bad messages since the last such line", count)
        if count := self._busy.flush(now):
            log.warning("busy: refused %d more requests since the last such line", count)

    def _maintain(self, now: float) -> None:
        if self._leave_wanted and self.leaving_since is None:
            others = [node for node in self.membership.ring_members() if node != self.settings.node_id]
            if others:
                self.leaving_since = now  # set at once so only one start runs; _start_leave resets it
                self._spawn(self._start_leave())
        ring = self.ring.ring
        held = self.tree.held_partitions()
        replicas = self.settings.config.replicas
        self.handoff_out.update(ring, held, self.tree.root)
        plan = exchange_plan(ring, self.settings.node_id, replicas, held, self.membership.is_up)
        self._run_actions(self.anti_entropy.tick(now, plan))
        for finished in self.anti_entropy.take_finished():
            self.handoff_out.on_finished(ring, finished, self.tree.root)
            if finished.lists_repaired:
                log.info("anti-entropy with %s repaired %d lists", finished.peer, finished.lists_repaired)
        for partition, root in self.handoff_out.droppable().items():
            if partition not in self._dropping:
                self._dropping.add(partition)
                self._spawn(self._drop_partition(partition, root))
        if self.joining and not self.handoff_out.incoming() and now - self.started_at > 1.0:
            self.joining = False
            self._spawn(self.storage.set_state("joining", None))
            log.info("join complete: %s", self.handoff_status())
        self._maybe_exit(now)

    def _maybe_exit(self, now: float) -> None:
        if self.leaving_since is None or self._stop is None or now - self.leaving_since < LEAVE_GRACE:
            return
        if len(self.tree) == 0 and not any(self.hint_counts.values()) and not self.anti_entropy.active():
            log.info("left the ring: every partition handed off (%s)", self.handoff_status())
            self._stop.set()

    def _run_actions(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, AskDigest):
                self._spawn(self._ask_digest(action))
            elif isinstance(action, Repair):
                self._spawn(self._repair(action))

    async def _request(self, node: str, message: Message, timeout: float = 5.0) -> Message | None:
        """Send one request to `node` and return its reply (None when unreachable or late), counted."""
        record = self.membership.table.get(node)
        if record is None:
            return None
        self.messages_exchanged += 1
        self.bytes_exchanged += sum(len(frame) for frame in encode(message))
        answer = await self.links.request(record.endpoint, message, timeout)
        if answer is not None:
            self.messages_exchanged += 1
            self.bytes_exchanged += sum(len(frame) for frame in encode(answer))
        return answer

    async def _ask_digest(self, ask: AskDigest) -> None:
        message = Message(Kind.DIGEST, f"d{next(self._ids)}", {"nodes": ask.nodes})
        answer = await self._request(ask.peer, message)
        now = time.monotonic()
        if answer is None or answer.kind is not Kind.DIGEST_REPLY:
            self._run_actions(self.anti_entropy.on_ask_failed(now, ask.exchange))
        else:
            self._run_actions(self.anti_entropy.on_reply(now, ask.exchange, answer.fields))

    async def _repair(self, repair: Repair) -> None:
        """Pull the peer's copy of one list and merge it here, and/or push this node's copy to the peer."""
        changed, ok = 0, True
        list_id = repair.list_id
        try:
            if repair.pull:
                answer = await self._request(
                    repair.peer, Message(Kind.FETCH, f"f{next(self._ids)}", {"list": list_id})
                )
                if answer is not None and answer.kind is Kind.STATE:
                    before = self.tree.digest(list_id)
                    await self.storage.merge(list_id, ShoppingList.from_bytes(answer.body, new_replica_id()))
                    changed += self.tree.digest(list_id) != before
                else:
                    ok = False
            if repair.push and ok:
                state = await self.storage.read(list_id)
                message = Message(Kind.REPLICATE, f"a{next(self._ids)}", {"list": list_id}, state.to_bytes())
                answer = await self._request(repair.peer, message)
                ok = answer is not None and answer.kind is Kind.OK
                changed += ok
        except Exception as problem:  # storage trouble or a bad copy: the next exchange tries again
            log.warning("anti-entropy repair of %s with %s failed: %s", list_id, repair.peer, problem)
            ok = False
        self._run_actions(
            self.anti_entropy.on_repaired(time.monotonic(), repair.exchange, list_id, ok=ok, changed=changed)
        )

    async def _drop_partition(self, partition: int, root: int) -> None:
        """Delete this node's copy of a partition every owner confirmed, list by list, skipping any list a
        write changed since (the next exchange sends it again)."""
        try:
            if self.tree.root(partition) != root:
                return
            expected = {list_id: self.tree.digest(list_id) for list_id in self.tree.lists_in(partition)}
            kept = 0
            for list_id, digest in expected.items():
                if digest is None or not await self.storage.drop(list_id, digest):
                    kept += 1
            if not kept:
                self.handoff_out.dropped(partition)
                log.info("handed partition %d off (%d lists)", partition, len(expected))
        except (
            Exception
        ) as problem:  # the environment's fault (database): tried again after the next exchange
            log.warning("dropping partition %d failed: %s", partition, problem)
        finally:
            self._dropping.discard(partition)

    async def _members_loop(self) -> None:
        """Read the members file again whenever it changes; a bad one is logged and the old keys kept."""
        path = self.settings.members_file
        if path is None or self.settings.keys is None:
            return
        seen = _changed_at(path)
        while True:
            await asyncio.sleep(MEMBERS_REREAD_SECONDS)
            changed = _changed_at(path)
            if changed == seen:
                continue
            seen = changed
            try:
                keys = load_members(path)
            except KeyFileError as problem:
                log.error("kept the old member keys: %s", problem)
                continue
            if keys != self.member_keys:
                log.info(
                    "members file %s now allows %d keys and revokes %d (was %d and %d)",
                    path,
                    len(keys.allowed),
                    len(keys.revoked),
                    len(self.member_keys.allowed),
                    len(self.member_keys.revoked),
                )
                await self._apply_member_keys(keys)

    async def _apply_member_keys(self, keys: MemberKeys) -> None:
        """Take new member keys. A newly revoked key also loses what it holds already: the ring is built
        without its member, links to it close, and the publisher is bound again, which ends every
        subscription (the others reconnect through ZAP; requests are checked per message). A key no
        longer revoked gets its member back into the ring."""
        newly_revoked = keys.revoked - self.member_keys.revoked
        self.member_keys = keys
        self.membership.revoked = keys.revoked
        for record in self.membership.peers():
            self.links.ensure(record.endpoint)  # a link pinning a revoked key is dropped
        self._rebuild_ring()  # without a newly revoked member, or with one taken back
        if not newly_revoked:
            return
        self.publisher.unbind(self.settings.publish)
        for _ in range(100):  # the old listener closes in zmq's I/O thread: its port frees up shortly
            try:
                self.publisher.bind(self.settings.publish)
                return
            except zmq.ZMQError:
                await asyncio.sleep(0.05)
        log.error("could not bind the publisher at %s again after revoking keys", self.settings.publish)

    async def _scrub_loop(self) -> None:
        """Walk the stored lists slowly, re-reading each from disk, so that a change made behind the node's
        back (a restored backup, a manual edit) reaches the digest tree and anti-entropy repairs it."""
        while True:
            await asyncio.sleep(self.settings.scrub_every)
            try:
                await self.scrub_step()
            except Exception as problem:  # database trouble: the next step tries again
                log.warning("scrub step failed: %s", problem)

    async def scrub_step(self) -> int:
        """Re-read the next SCRUB_BATCH lists (stored or in the tree) from disk; return how many differed."""
        after = self._scrub_after
        stored = await self.storage.list_ids_after(after, SCRUB_BATCH)
        last = stored[-1] if len(stored) == SCRUB_BATCH else None
        believed = [i for i in self.tree.list_ids() if i > after and (last is None or i <= last)]
        ids = sorted(set(stored) | set(believed))
        self._scrub_after = last or ""
        differed = 0
        for list_id, digest in (await self.storage.stored_digests(ids)).items():
            if self.tree.digest(list_id) != digest:
                differed += 1
                self.tree.update(list_id, digest)
        if differed:
            log.warning("scrub: %d lists on disk differed from the digest tree", differed)
        return differed

    def handoff_status(self) -> dict[str, Any]:
        """Return partitions and lists moved, and whether this node is joining or leaving."""
        return {
            **self.handoff_out.status(),
            "joining": self.joining,
            "leaving": self.leaving_since is not None,
            "lists_held": len(self.tree),
            "partitions_held": len(self.tree.held_partitions()),
        }

    def anti_entropy_status(self) -> dict[str, Any]:
        """Return the anti-entropy counters: exchanges, lists repaired, the last exchange."""
        totals = self.anti_entropy.totals
        last = totals.last_exchange_at
        return {
            "enabled": self.anti_entropy.enabled,
            "exchanges": totals.exchanges,
            "exchanges_failed": totals.exchanges_failed,
            "lists_repaired": totals.lists_repaired,
            "last_exchange_ago": round(time.monotonic() - last, 2) if last is not None else None,
            "last_peer": totals.last_peer,
            "last_repaired": totals.last_repaired,
            "active": self.anti_entropy.active(),
            "pending_repairs": self.anti_entropy.pending_repairs(),
            "messages": self.messages_exchanged,
            "bytes": self.bytes_exchanged,
        }

    def gossip_status(self) -> dict[str, Any]:
        """Return the gossip table's digest (equal on two nodes: they agree) and the core's counters."""
        counters = self.gossip.counters
        return {
            "digest": f"{self.gossip.digest:016x}",
            "probes": counters.probes,
            "suspicions": counters.suspected.total(),
            "refutations": counters.refutations,
            "syncs": counters.syncs,
        }

    def status(self) -> dict[str, Any]:
        """Return this node's view: members, their liveness and ownership, hints held, handoffs."""
        shares = self.ring.ring.ownership()
        return {
            "role": "node",
            "id": self.settings.node_id,
            "endpoint": self.settings.endpoint,
            "key": self.settings.keys.public if self.settings.keys else "",
            "members": [
                {
                    "id": record.node_id,
                    "endpoint": record.endpoint,
                    "key": record.key,
                    "state": self.membership.liveness(record.node_id).value,
                    "ownership": round(shares.get(record.node_id, 0.0), 4),
                    "revoked": self.membership.is_revoked(record),
                    **_gossiped(record, self.gossip.claim(record.node_id)),
                }
                for record in sorted(self.membership.table.values(), key=lambda r: r.node_id)
            ],
            "gossip": self.gossip_status(),
            "hints": dict(sorted(self.hint_counts.items())),
            "handoffs": {owner: state.value for owner, state in sorted(self.handoff.states.items())},
            "in_flight": self.core.pending(),
            "load": {
                "coordinating": self.core.pending(),
                "coordinating_limit": self.settings.max_coordinating,
                "coordinating_refused": self.coordinating_refused,
                "replica": self.store_work.status(),
                "cache": self.storage.cache_status(),
            },
            "anti_entropy": self.anti_entropy_status(),
            "handoff": self.handoff_status(),
            "config": {
                "N": self.settings.config.replicas,
                "R": self.settings.config.read_quorum,
                "W": self.settings.config.write_quorum,
            },
        }


def _changed_at(path: Path) -> tuple[int, int]:
    """Return when `path` (a members file, or a directory of key files and the newest of them) changed."""
    try:
        paths = [path, *path.glob("*.key")] if path.is_dir() else [path]
        return max((p.stat().st_mtime_ns, p.stat().st_size) for p in paths)
    except (OSError, ValueError):
        return (0, 0)


def _gossiped(record: MemberRecord, claim: Claim | None) -> dict[str, Any]:
    """Return a status member's gossiped fields: the claim the table holds, incarnation, leaving, key."""
    return {
        "claim": claim.name.lower() if claim is not None else None,
        "incarnation": record.incarnation,
        "leaving": record.leaving,
        "key": record.key,
    }


def _decoded(body: bytes) -> ShoppingList | None:
    """Return the list state `body` encodes, or None if it is not one (the sender's fault)."""
    try:
        return ShoppingList.from_bytes(body, new_replica_id())
    except ValueError:
        return None


def _refused_hint(message: Message, members: dict[str, Any]) -> Message | None:
    """Return the error answering a REPLICATE whose `hint_for` names no member (a hint nobody will ever
    collect would stay on disk for good), or None when the message may be served."""
    if message.kind is not Kind.REPLICATE or "hint_for" not in message.fields:
        return None
    hint_for = message.fields["hint_for"]
    if not isinstance(hint_for, str):
        return error(message.request_id, ErrorCode.MALFORMED, "`hint_for` must be a node id")
    if hint_for not in members:
        return error(message.request_id, ErrorCode.BAD_REQUEST, f"no member is called {hint_for[:200]!r}")
    return None


async def serve_node(
    settings: NodeSettings, uri: str, stop: asyncio.Event, ready: Callable[[], None]
) -> None:
    """Open storage at `uri`, then run a node until `stop` is set."""
    storage = Storage(uri, settings.cache_bytes)
    await storage.open()
    service = NodeService(settings, storage)
    await service.prepare()
    ready()
    try:
        await service.run(stop)
    finally:
        await storage.close()
