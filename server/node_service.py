"""The server node process: binds a ROUTER (requests) and a PUB (changes), runs the node core, gossip and
hinted handoff on asyncio, and stores lists in its own PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import zmq
import zmq.asyncio

from crdt import ShoppingList
from crdt.replica import new_replica_id
from protocol.messages import (
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
from server.links import Links
from server.membership import MemberRecord, Membership, table_from_wire
from server.node_core import Config, Effect, Handoff, NodeCore, Publish, Respond, Send
from server.ring import RingHolder, build_ring
from server.storage import Storage

log = logging.getLogger("shoplist.node")

TICK = 0.02
GOSSIP_EVERY = 0.2
HANDOFF_EVERY = 0.5


@dataclass(frozen=True)
class NodeSettings:
    """How to run one node."""

    node_id: str
    endpoint: str
    publish: str
    seeds: tuple[str, ...]
    config: Config
    partitions: int = 256


class NodeService:
    """One node: wires sockets, storage and the clock to the sans-io cores."""

    def __init__(self, settings: NodeSettings, storage: Storage) -> None:
        self.settings = settings
        self.storage = storage
        now = time.monotonic()
        me = MemberRecord(settings.node_id, settings.endpoint, settings.publish, time.time_ns() // 1000)
        self.membership = Membership(me, now)
        self.ring = RingHolder(build_ring([settings.node_id], settings.partitions))
        self.core = NodeCore(settings.node_id, settings.config, self.membership, lambda: self.ring.ring)
        self.handoff = Handoff()
        self.hint_counts: dict[str, int] = {}
        self._ids = itertools.count(1)
        self.context = zmq.asyncio.Context()
        self.router = sockets.configure(self.context.socket(zmq.ROUTER), hwm=sockets.PEER_HWM)
        self.publisher = sockets.configure(self.context.socket(zmq.PUB), hwm=sockets.PEER_HWM)
        self.links = Links(self.context, self._on_link_reply, self._on_link_lost)
        self._tasks: set[asyncio.Task[Any]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set."""
        self.router.bind(self.settings.endpoint)
        self.publisher.bind(self.settings.publish)
        log.info(
            "node %s serving endpoint=%s publish=%s",
            self.settings.node_id,
            self.settings.endpoint,
            self.settings.publish,
        )
        loops = [self._serve(), self._tick_loop(), self._gossip_loop(), self._handoff_loop()]
        tasks = [asyncio.create_task(loop) for loop in loops]
        await stop.wait()
        for task in tasks:
            task.cancel()
        self.links.close()
        self.router.close(0)
        self.publisher.close(0)
        self.context.term()

    # ----- inbound requests ------------------------------------------------------------------------

    async def _serve(self) -> None:
        while True:
            frames = await self.router.recv_multipart(copy=True)
            identity, payload = frames[0], frames[1:]
            try:
                message = decode(payload)
            except ProtocolError as problem:
                log.warning("bad message from %s: %s (%s)", identity.hex(), problem, problem.code.value)
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
        elif kind is Kind.WRITE:
            self._apply(self.core.on_write(now, identity, message))
        elif kind is Kind.READ:
            self._apply(self.core.on_read(now, identity, message))
        elif kind in (Kind.REPLICATE, Kind.FETCH):
            self._spawn(self._serve_replica(identity, message, delta))
        elif kind is Kind.GOSSIP:
            self._serve_gossip(identity, message, now)
        elif kind is Kind.STATUS:
            self._answer(identity, reply(message, Kind.STATUS_REPLY, info=self.status()))
        elif kind is Kind.PING:
            self._answer(identity, reply(message, Kind.PONG))
        else:
            self._answer(
                identity,
                error(message.request_id, ErrorCode.BAD_REQUEST, f"a node does not take {kind.value}"),
            )

    async def _serve_replica(self, identity: bytes, message: Message, delta: ShoppingList | None) -> None:
        self._answer(identity, await self._replica(message, delta))

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

    def _serve_gossip(self, identity: bytes, message: Message, now: float) -> None:
        try:
            table = table_from_wire(message.fields.get("members", []))
        except ValueError as problem:
            self._answer(identity, error(message.request_id, ErrorCode.MALFORMED, str(problem)))
            return
        self._learn(table, now)
        self._answer(identity, reply(message, Kind.GOSSIP, members=self.membership.wire_table()))

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
            self._spawn(self._local(effect.message))
            return
        record = self.membership.table.get(effect.node)
        if record is None or not self.links.send(record.endpoint, effect.message):
            self._apply(self.core.on_unreachable(time.monotonic(), effect.node, effect.message.request_id))

    async def _local(self, message: Message) -> None:
        answer = await self._replica(message)
        self._apply(self.core.on_reply(time.monotonic(), self.settings.node_id, answer))

    def _on_link_reply(self, endpoint: str, message: Message) -> None:
        now = time.monotonic()
        if message.kind is Kind.GOSSIP:
            try:
                self._learn(table_from_wire(message.fields.get("members", [])), now)
            except ValueError as problem:
                log.warning("bad gossip from %s: %s", endpoint, problem)
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
        task.add_done_callback(self._tasks.discard)

    # ----- time-driven work ------------------------------------------------------------------------

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            self._apply(self.core.tick(time.monotonic()))

    async def _gossip_loop(self) -> None:
        while True:
            self.membership.tick(time.monotonic())
            targets = {record.endpoint for record in self.membership.peers()} | set(self.settings.seeds)
            targets.discard(self.settings.endpoint)
            for endpoint in sorted(targets):
                gossip = Message(
                    Kind.GOSSIP, f"g{next(self._ids)}", {"members": self.membership.wire_table()}
                )
                self.links.send(endpoint, gossip)
            await asyncio.sleep(GOSSIP_EVERY)

    def _learn(self, table: dict[str, MemberRecord], now: float) -> None:
        before = self.membership.members()
        self.membership.on_gossip(now, table)
        members = self.membership.members()
        if members != before:
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
        except Exception:
            self.handoff.step(owner, "failed")
            raise

    def status(self) -> dict[str, Any]:
        """Return this node's view: members, their liveness and ownership, hints held, handoffs."""
        shares = self.ring.ring.ownership()
        return {
            "role": "node",
            "id": self.settings.node_id,
            "endpoint": self.settings.endpoint,
            "members": [
                {
                    "id": record.node_id,
                    "endpoint": record.endpoint,
                    "state": self.membership.liveness(record.node_id).value,
                    "ownership": round(shares.get(record.node_id, 0.0), 4),
                }
                for record in sorted(self.membership.table.values(), key=lambda r: r.node_id)
            ],
            "hints": dict(sorted(self.hint_counts.items())),
            "handoffs": {owner: state.value for owner, state in sorted(self.handoff.states.items())},
            "in_flight": self.core.pending(),
            "config": {
                "N": self.settings.config.replicas,
                "R": self.settings.config.read_quorum,
                "W": self.settings.config.write_quorum,
            },
        }


def _decoded(body: bytes) -> ShoppingList | None:
    """Return the list state `body` encodes, or None if it is not one (the sender's fault)."""
    try:
        return ShoppingList.from_bytes(body, new_replica_id())
    except ValueError:
        return None


async def serve_node(
    settings: NodeSettings, uri: str, stop: asyncio.Event, ready: Callable[[], None]
) -> None:
    """Open storage at `uri`, then run a node until `stop` is set."""
    storage = Storage(uri)
    await storage.open()
    service = NodeService(settings, storage)
    ready()
    try:
        await service.run(stop)
    finally:
        await storage.close()
