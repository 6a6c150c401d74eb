"""The proxy process: a rate-limited ROUTER for clients, an XPUB that republishes the changes its
subscribers follow under their own topics, DEALERs to the nodes it learns by gossip, and a SUB on every
node's changes; routing decisions come from the proxy core, list ids become storage ids on the way in."""

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
    request_id_of,
)
from server import capability, sockets
from server.gossip import Claim, Watcher
from server.gossip_wire import from_message, to_message
from server.keys import KeyPair
from server.links import Links
from server.log_throttle import Throttle
from server.membership import Membership
from server.proxy_core import ROUTED, ProxyCore, ProxyEffect, ToClient, ToNode
from server.rate_limit import DEFAULT_BURST, DEFAULT_MAX_BUCKETS, DEFAULT_RATE, RateLimiter
from server.ring import Ring, RingHolder, build_ring

LOG_EVERY = 10.0
"""Seconds between log lines about bad messages: the first is logged, then one count per interval."""

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
    rate: float = DEFAULT_RATE
    burst: float = DEFAULT_BURST
    max_buckets: int = DEFAULT_MAX_BUCKETS
    max_topics: int = capability.DEFAULT_MAX_TOPICS
    client_hwm: int = sockets.FRONT_HWM
    keys: KeyPair | None = None
    """The proxy's Curve key pair (its ROUTER and XPUB serve with it); None runs it in plain text."""


@dataclass(frozen=True)
class ClientOrigin:
    """Where a routed request came from: the client's connection and the list id it asked about."""

    identity: bytes
    list_id: str


class ProxyService:
    """One stateless proxy."""

    def __init__(self, settings: ProxySettings) -> None:
        self.settings = settings
        now = time.monotonic()
        self.membership = Membership(None, now)
        self.watcher = Watcher(
            self.membership, [address_of(seed) for seed in settings.seeds], random.Random(), now
        )
        self.ring: RingHolder | None = None
        self.core = ProxyCore(self.membership, self._current_ring, replicas=settings.replicas)
        self.context = zmq.asyncio.Context()
        # Clients are authorised per list, not per key: both client-facing sockets take any client key
        # (no ZAP handler), but with keys they still encrypt and prove this proxy's identity.
        self.front = sockets.curve_server(
            sockets.configure(self.context.socket(zmq.ROUTER), hwm=settings.client_hwm), settings.keys
        )
        self.publisher = sockets.curve_server(
            sockets.configure_publisher(
                self.context.socket(zmq.XPUB), hwm=sockets.PEER_HWM, subscription_hwm=settings.client_hwm
            ),
            settings.keys,
        )
        self.publisher.setsockopt(zmq.XPUB_MANUAL, 1)  # only whole, valid topics are applied
        self.subscriptions = capability.Subscriptions(settings.max_topics)
        self.limiter = RateLimiter(settings.rate, settings.burst, settings.max_buckets)
        self._bad_messages = Throttle(LOG_EVERY)
        self.seed_keys = dict(split_endpoint(seed) for seed in settings.seeds)
        self.links = Links(
            self.context,
            self._on_node_reply,
            self._on_node_lost,
            keys=settings.keys,
            server_key=self._server_key,
        )
        self._ids = itertools.count(1)
        self._changes: dict[str, Any] = {}
        """One SUB per node publish endpoint: a Curve client pins one server key per socket."""
        self._fan_outs: list[asyncio.Task[None]] = []

    def _current_ring(self) -> Ring | None:
        return self.ring.ring if self.ring else None

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set."""
        self.front.bind(self.settings.endpoint)
        self.publisher.bind(self.settings.publish)
        for seed in self.seed_keys:  # connect now: a DEALER drops what is sent before it is connected
            self.links.ensure(seed)
        log.info(
            "proxy %s serving endpoint=%s publish=%s",
            self.settings.proxy_id,
            self.settings.endpoint,
            self.settings.publish,
        )
        tasks = [
            asyncio.create_task(loop)
            for loop in (self._serve(), self._follow_subscriptions(), self._tick_loop(), self._gossip_loop())
        ]
        await stop.wait()
        for task in tasks + self._fan_outs:
            task.cancel()
        self.links.close()
        for socket in (self.front, self.publisher, *self._changes.values()):
            socket.close(0)
        self.context.term()

    async def _serve(self) -> None:
        while True:
            frames = await self.front.recv_multipart()
            identity, payload = frames[0], frames[1:]
            if not self.limiter.admit(self._rate_key(identity), time.monotonic()):
                self._refuse_for_rate(identity, payload)
                continue
            try:
                message = decode(payload)
            except ProtocolError as problem:
                if count := self._bad_messages.event(time.monotonic()):
                    log.warning(
                        "%d bad messages since the last such line; the latest from client %s: %s (%s)",
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

    def _rate_key(self, identity: bytes) -> bytes:
        """Return whose bucket a request from connection `identity` takes a token from. The ROUTER's
        routing identity is one per connection; with CurveZMQ the client's public key (the frame's
        `User-Id` property set by the ZAP handler) is the better key: it survives reconnecting."""
        return identity

    def _refuse_for_rate(self, identity: bytes, payload: list[bytes]) -> None:
        wait = self.limiter.retry_after(self._rate_key(identity))
        text = (
            f"too many requests on this connection (limit {self.limiter.rate:g}/s,"
            f" bursts of {self.limiter.burst:g}); retry in {max(wait, 0.001):.3f} s"
        )
        self._answer(identity, error(request_id_of(payload), ErrorCode.RATE_LIMITED, text))

    def _dispatch(self, identity: bytes, message: Message) -> None:
        if message.kind in ROUTED:
            origin = ClientOrigin(identity, message.list_id)
            self._apply(self.core.on_request(time.monotonic(), origin, capability.to_storage(message)))
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
                origin = effect.origin
                assert isinstance(origin, ClientOrigin), "the core answers the origins the shell gave it"
                self._answer(origin.identity, capability.to_client(effect.message, origin.list_id))
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
            if record.publish not in self._changes and (record.key or self.settings.keys is None):
                self._subscribe(record.publish, record.key)
        if members and (self.ring is None or self.ring.ring.nodes() != members):
            ring = build_ring(members, self.settings.partitions)
            if self.ring is None:
                self.ring = RingHolder(ring)
            else:
                self.ring.change(lambda _: ring)
            log.info("ring now has %d members: %s", len(members), " ".join(members))

    def _answer(self, identity: object, message: Message) -> None:
        sockets.try_send(self.front, [identity, *encode(message)])

    async def _follow_subscriptions(self) -> None:
        """Apply the subscriptions clients send the XPUB: only whole valid topics, within the cap. The
        option applies to the connection the XPUB last read from, so nothing may await in between."""
        while True:
            frames = await self.publisher.recv_multipart()
            refused = self.subscriptions.refused
            decision = self.subscriptions.on_message(frames[0]) if len(frames) == 1 else None
            if decision is not None:
                option = zmq.SUBSCRIBE if decision.subscribe else zmq.UNSUBSCRIBE
                self.publisher.setsockopt(option, decision.topic)
            elif self.subscriptions.refused > refused and _is_power_of_two(self.subscriptions.refused):
                log.warning(
                    "%d subscriptions refused so far: %d topics are followed, the limit",
                    self.subscriptions.refused,
                    len(self.subscriptions),
                )

    def _server_key(self, endpoint: str) -> str | None:
        """Return the public key to pin for a node endpoint: its member record's, else its seed's."""
        return self.membership.key_at(endpoint) or self.seed_keys.get(endpoint)

    def _subscribe(self, publish: str, key: str) -> None:
        changes = self.change_socket(key)
        changes.connect(publish)
        self._changes[publish] = changes
        self._fan_outs.append(asyncio.create_task(self._fan_out(changes)))

    def change_socket(self, key: str) -> Any:
        """Return a SUB for every change of the node serving with `key` ("" in plain text), not connected."""
        changes = sockets.configure(self.context.socket(zmq.SUB), hwm=sockets.PEER_HWM)
        sockets.curve_client(changes, self.settings.keys, key)
        changes.setsockopt(zmq.SUBSCRIBE, b"")
        return changes

    async def _fan_out(self, changes: Any) -> None:
        """Republish one node's changes (under storage ids) to the subscribers following those lists,
        under their list id's topic; changes nobody here follows are dropped."""
        while True:
            frames = await changes.recv_multipart()
            republished = self.subscriptions.republish(frames)
            if republished is not None:
                sockets.try_send(self.publisher, republished)

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            now = time.monotonic()
            self._apply(self.core.tick(now))
            if count := self._bad_messages.flush(now):
                log.warning("%d more bad messages from clients since the last such line", count)

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
            "key": self.settings.keys.public if self.settings.keys else "",
            "members": [
                {
                    "id": record.node_id,
                    "endpoint": record.endpoint,
                    "key": record.key,
                    "state": self.membership.liveness(record.node_id).value,
                    "ownership": round(shares.get(record.node_id, 0.0), 4),
                    "claim": _claim_name(self.watcher.claim(record.node_id)),
                    "incarnation": record.incarnation,
                }
                for record in self.membership.peers()
            ],
            "in_flight": self.core.in_flight(),
            "subscriptions": len(self.subscriptions),
            "subscriptions_refused": self.subscriptions.refused,
            "rate_limited": self.limiter.refused,
            "gossip": {"digest": f"{self.watcher.digest:016x}"},
        }


def _is_power_of_two(number: int) -> bool:
    return number > 0 and number & (number - 1) == 0


def _claim_name(claim: Claim | None) -> str | None:
    return claim.name.lower() if claim is not None else None
