"""The proxy process: a ROUTER for clients, a PUB that fans out every change, DEALERs to the nodes it
learns by gossip, and a SUB on every node's changes; routing decisions come from the proxy core."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import zmq
import zmq.asyncio

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
)
from server import sockets
from server.gossip import Claim, Watcher
from server.gossip_wire import from_message, to_message
from server.links import Links
from server.membership import Membership
from server.proxy_core import ROUTED, ProxyCore, ProxyEffect, ToClient, ToNode
from server.ring import Ring, RingHolder, build_ring

log = logging.getLogger("shoplist.proxy")

TICK = 0.02


@dataclass(frozen=True)
class ProxySettings:
    """How to run one proxy."""

    proxy_id: str
    endpoint: str
    publish: str
    seeds: tuple[str, ...]
    replicas: int = 3
    partitions: int = 256


class ProxyService:
    """One stateless proxy."""

    def __init__(self, settings: ProxySettings) -> None:
        self.settings = settings
        now = time.monotonic()
        self.membership = Membership(None, now)
        self.watcher = Watcher(self.membership, settings.seeds, random.Random(), now)
        self.ring: RingHolder | None = None
        self.core = ProxyCore(self.membership, self._current_ring, replicas=settings.replicas)
        self.context = zmq.asyncio.Context()
        self.front = sockets.configure(self.context.socket(zmq.ROUTER))
        self.publisher = sockets.configure(self.context.socket(zmq.PUB), hwm=sockets.PEER_HWM)
        self.changes = sockets.configure(self.context.socket(zmq.SUB), hwm=sockets.PEER_HWM)
        self.changes.setsockopt(zmq.SUBSCRIBE, b"")
        self.links = Links(self.context, self._on_node_reply, self._on_node_lost)
        self._ids = itertools.count(1)
        self._subscribed: set[str] = set()

    def _current_ring(self) -> Ring | None:
        return self.ring.ring if self.ring else None

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set."""
        self.front.bind(self.settings.endpoint)
        self.publisher.bind(self.settings.publish)
        for seed in self.settings.seeds:  # connect now: a DEALER drops what is sent before it is connected
            self.links.ensure(seed)
        log.info(
            "proxy %s serving endpoint=%s publish=%s",
            self.settings.proxy_id,
            self.settings.endpoint,
            self.settings.publish,
        )
        tasks = [
            asyncio.create_task(loop)
            for loop in (self._serve(), self._fan_out(), self._tick_loop(), self._gossip_loop())
        ]
        await stop.wait()
        for task in tasks:
            task.cancel()
        self.links.close()
        for socket in (self.front, self.publisher, self.changes):
            socket.close(0)
        self.context.term()

    async def _serve(self) -> None:
        while True:
            frames = await self.front.recv_multipart()
            identity, payload = frames[0], frames[1:]
            try:
                message = decode(payload)
            except ProtocolError as problem:
                log.warning(
                    "bad message from client %s: %s (%s)", identity.hex(), problem, problem.code.value
                )
                self._answer(identity, error_for_frames(payload, problem))
                continue
            try:
                self._dispatch(identity, message)
            except Exception:
                log.exception("bug: handling %s failed", message.kind.value)
                self._answer(identity, error(message.request_id, ErrorCode.INTERNAL, "internal error"))

    def _dispatch(self, identity: bytes, message: Message) -> None:
        if message.kind in ROUTED:
            self._apply(self.core.on_request(time.monotonic(), identity, message))
        elif message.kind is Kind.STATUS:
            self._answer(identity, reply(message, Kind.STATUS_REPLY, info=self.status()))
        elif message.kind is Kind.PING:
            self._answer(identity, reply(message, Kind.PONG, publish=self.settings.publish))
        else:
            text = f"a proxy takes write, read, status and ping, not {message.kind.value}"
            self._answer(identity, error(message.request_id, ErrorCode.BAD_REQUEST, text))

    def _apply(self, effects: list[ProxyEffect]) -> None:
        for effect in effects:
            if isinstance(effect, ToClient):
                self._answer(effect.origin, effect.message)
            elif isinstance(effect, ToNode):
                record = self.membership.table.get(effect.node)
                if record is None or not self.links.send(record.endpoint, effect.message):
                    self._apply(
                        self.core.on_unreachable(time.monotonic(), effect.node, effect.message.request_id)
                    )

    def _on_node_reply(self, endpoint: str, message: Message) -> None:
        now = time.monotonic()
        if message.kind in GOSSIP:
            sender, gossip = from_message(message)
            self.watcher.on_message(now, sender, gossip)
            self._learn()
            return
        node = self.membership.node_at(endpoint) or endpoint
        self._apply(self.core.on_reply(now, node, message))

    def _on_node_lost(self, endpoint: str) -> None:
        node = self.membership.node_at(endpoint)
        if node is not None:
            log.info("lost the connection to node %s", node)
            self._apply(self.core.on_node_lost(time.monotonic(), node))

    def _learn(self) -> None:
        """Connect to every member (a dropped connection is then news at once, even from a node no
        request went to yet), subscribe to its changes, and rebuild the ring when the members changed."""
        members = self.membership.ring_members()
        for record in self.membership.peers():
            self.links.ensure(record.endpoint)
            if record.publish not in self._subscribed:
                self.changes.connect(record.publish)
                self._subscribed.add(record.publish)
        if members and (self.ring is None or self.ring.ring.nodes() != members):
            ring = build_ring(members, self.settings.partitions)
            if self.ring is None:
                self.ring = RingHolder(ring)
            else:
                self.ring.change(lambda _: ring)
            log.info("ring now has %d members: %s", len(members), " ".join(members))

    def _answer(self, identity: object, message: Message) -> None:
        sockets.try_send(self.front, [identity, *encode(message)])

    async def _fan_out(self) -> None:
        """Republish every node's change to this proxy's subscribers (topic = list id)."""
        while True:
            frames = await self.changes.recv_multipart()
            sockets.try_send(self.publisher, frames)

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            self._apply(self.core.tick(time.monotonic()))

    async def _gossip_loop(self) -> None:
        """Ask members for the table's news each round (a digest only: they answer when it differs)."""
        while True:
            now = time.monotonic()
            for outgoing in self.watcher.tick(now):
                record = self.membership.table.get(outgoing.to)
                endpoint = record.endpoint if record is not None else outgoing.to
                message = to_message(outgoing.message, self.settings.proxy_id, f"pg{next(self._ids)}")
                self.links.send(endpoint, message)
            await asyncio.sleep(min(max(self.watcher.wake_at() - now, 0.001), TICK))

    def status(self) -> dict[str, Any]:
        """Return this proxy's view of the ring: members, liveness, ownership, requests in flight."""
        ring = self._current_ring()
        shares = ring.ownership() if ring else {}
        return {
            "role": "proxy",
            "id": self.settings.proxy_id,
            "endpoint": self.settings.endpoint,
            "publish": self.settings.publish,
            "members": [
                {
                    "id": record.node_id,
                    "endpoint": record.endpoint,
                    "state": self.membership.liveness(record.node_id).value,
                    "ownership": round(shares.get(record.node_id, 0.0), 4),
                    "claim": _claim_name(self.watcher.claim(record.node_id)),
                    "incarnation": record.incarnation,
                }
                for record in self.membership.peers()
            ],
            "in_flight": self.core.in_flight(),
            "gossip": {"digest": f"{self.watcher.digest:016x}"},
        }


def _claim_name(claim: Claim | None) -> str | None:
    return claim.name.lower() if claim is not None else None
