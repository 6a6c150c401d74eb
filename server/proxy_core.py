"""The proxy's routing core (sans-io): sends each client request to a live coordinator in the list's
preference list, retries with backoff and fails over clockwise (zguide Lazy Pirate, proxy side).

Retry rules: attempt k waits `first_timeout * 2**k` for a reply; an unreachable node, a dropped
connection or an UNAVAILABLE answer moves on at once, so the timeout only covers a node that is connected
but silent, and is long enough not to resend work that a merely busy node is still doing; after
`deadline` seconds the client gets UNAVAILABLE. WRITE and READ are safe to repeat because merging a
delta twice changes nothing.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

from protocol.messages import ErrorCode, Kind, Message, error
from server.membership import Evidence, Membership
from server.ring import Ring

ROUTED = frozenset({Kind.WRITE, Kind.READ})


@dataclass(frozen=True)
class ToNode:
    """Send `message` to node `node`."""

    node: str
    message: Message


@dataclass(frozen=True)
class ToClient:
    """Answer client `origin` (the shell's opaque return address)."""

    origin: object
    message: Message


ProxyEffect = ToNode | ToClient


@dataclass
class _Pending:
    origin: object
    request: Message
    candidates: list[str]
    attempt: int
    node: str
    retry_at: float
    deadline: float
    waiting: bool = False


class ProxyCore:
    """Tracks requests in flight from clients to nodes."""

    def __init__(
        self,
        membership: Membership,
        ring: Callable[[], Ring | None],
        *,
        replicas: int = 3,
        first_timeout: float = 1.0,
        deadline: float = 4.0,
    ) -> None:
        self.membership = membership
        self.ring = ring
        self.replicas = replicas
        self.first_timeout = first_timeout
        self.deadline = deadline
        self._ids = itertools.count(1)
        self._pending: dict[str, _Pending] = {}

    def candidates(self, list_id: str) -> list[str]:
        """Return nodes to try for `list_id`: live preference-list nodes, other live nodes clockwise,
        then the rest (a node we think is down may be back)."""
        ring = self.ring()
        if ring is None:
            return []
        order = ring.successors(list_id)
        up = [node for node in order if self.membership.is_up(node)]
        return up + [node for node in order if node not in up]

    def on_request(self, now: float, origin: object, request: Message) -> list[ProxyEffect]:
        """A client sent a WRITE or READ."""
        candidates = self.candidates(request.list_id)
        if not candidates:
            return [
                ToClient(origin, error(request.request_id, ErrorCode.UNAVAILABLE, "no node is known yet"))
            ]
        proxy_id = f"p{next(self._ids)}"
        pending = _Pending(
            origin, request, candidates, 0, candidates[0], now + self.first_timeout, now + self.deadline
        )
        self._pending[proxy_id] = pending
        return [self._forward(proxy_id, pending)]

    def on_reply(self, now: float, node: str, reply: Message) -> list[ProxyEffect]:
        """A node answered; unknown and late replies are dropped."""
        pending = self._pending.get(reply.request_id)
        if pending is None or pending.node != node:
            return []
        self.membership.observe(node, Evidence.REPLY, now)
        if reply.kind is Kind.ERROR and reply.fields.get("code") in (
            ErrorCode.UNAVAILABLE.value,
            ErrorCode.INTERNAL.value,
        ):
            return self._next_attempt(now, reply.request_id, pending, failed_fast=True)
        del self._pending[reply.request_id]
        return [
            ToClient(
                pending.origin, Message(reply.kind, pending.request.request_id, reply.fields, reply.body)
            )
        ]

    def on_unreachable(self, now: float, node: str, proxy_id: str) -> list[ProxyEffect]:
        """A forward could not be sent: `node` has no live connection."""
        self.membership.observe(node, Evidence.UNREACHABLE, now)
        pending = self._pending.get(proxy_id)
        if pending is None or pending.node != node:
            return []
        return self._next_attempt(now, proxy_id, pending, failed_fast=True)

    def on_node_lost(self, now: float, node: str) -> list[ProxyEffect]:
        """The connection to `node` dropped: every request waiting on it moves to the next node at once,
        instead of after its timeout (a killed coordinator costs no stall)."""
        self.membership.observe(node, Evidence.UNREACHABLE, now)
        effects: list[ProxyEffect] = []
        for proxy_id, pending in list(self._pending.items()):
            if pending.node == node and not pending.waiting:
                effects += self._next_attempt(now, proxy_id, pending, failed_fast=True)
        return effects

    def tick(self, now: float) -> list[ProxyEffect]:
        """Retry attempts that waited too long."""
        effects: list[ProxyEffect] = []
        for proxy_id, pending in list(self._pending.items()):
            if now >= pending.retry_at and pending.waiting and now < pending.deadline:
                pending.waiting = False
                pending.retry_at = now + self.first_timeout
                effects.append(self._forward(proxy_id, pending))
            elif now >= pending.retry_at:
                effects += self._next_attempt(now, proxy_id, pending)
        return effects

    def in_flight(self) -> int:
        """Return how many client requests await a node's answer."""
        return len(self._pending)

    def _next_attempt(
        self, now: float, proxy_id: str, pending: _Pending, *, failed_fast: bool = False
    ) -> list[ProxyEffect]:
        if now >= pending.deadline:
            del self._pending[proxy_id]
            text = f"no node answered within {self.deadline:g} s ({pending.attempt + 1} attempts)"
            return [ToClient(pending.origin, error(pending.request.request_id, ErrorCode.UNAVAILABLE, text))]
        pending.attempt += 1
        pending.node = pending.candidates[pending.attempt % len(pending.candidates)]
        rounds = pending.attempt // len(pending.candidates)
        pending.retry_at = min(now + self.first_timeout * 2**rounds, pending.deadline)
        if failed_fast and pending.attempt % len(pending.candidates) == 0:
            pending.waiting = True  # every node failed at once: back off instead of spinning
            return []
        return [self._forward(proxy_id, pending)]

    def _forward(self, proxy_id: str, pending: _Pending) -> ToNode:
        request = pending.request
        return ToNode(pending.node, Message(request.kind, proxy_id, request.fields, request.body))
