"""The cloud client: write deltas, read lists and subscribe to changes through any of several proxies
(asyncio + pyzmq; Lazy Pirate retries with failover to the next proxy, zguide chapter 4).

One `CloudClient` owns one DEALER socket and belongs to the asyncio task that uses it: never share one
across threads, and give each concurrent task its own client (they may share a zmq context).

Every connection is CurveZMQ: the endpoint pins the proxy's public key (`tcp://host:port?key=<z85>`),
for its request endpoint and its publish endpoint alike (a proxy serves both with one key pair). An
endpoint without a key is refused unless insecure mode is on (`insecure=True` or SHOPLIST_INSECURE=1).
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import zmq
import zmq.asyncio

from crdt import ShoppingList
from crdt.replica import new_replica_id
from protocol.endpoints import split_endpoint
from protocol.messages import (
    MAX_FRAME_BYTES,
    Kind,
    Message,
    ProtocolError,
    decode,
    encode,
    topic,
)

CLIENT_HWM = 64
HANDSHAKE_FAILED = (
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)
"""What a proxy holding another key than the pinned one, or speaking plain text, looks like from here."""
INSECURE_ENV = "SHOPLIST_INSECURE"


class CloudError(Exception):
    """The cloud answered with an error (`code` says which, see docs/protocol.md)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class CloudUnavailable(CloudError):
    """No proxy answered in time: the network or the whole cloud is down (the environment's fault)."""

    def __init__(self, message: str) -> None:
        super().__init__("unavailable", message)


class InsecureEndpointError(ValueError):
    """A proxy endpoint pins no server key and insecure mode is off (the configuration's fault)."""


def insecure_mode() -> bool:
    """Return whether plain-text endpoints are allowed ($SHOPLIST_INSECURE=1)."""
    return os.environ.get(INSECURE_ENV) == "1"


def server_keys(proxies: Sequence[str], insecure: bool | None = None) -> list[tuple[str, str | None]]:
    """Return (address, pinned key or None) for every endpoint. Raises InsecureEndpointError for one
    without a key unless insecure mode is on, and ValueError for a malformed key."""
    allowed = insecure_mode() if insecure is None else insecure
    parsed = [split_endpoint(endpoint) for endpoint in proxies]
    for address, key in parsed:
        if key is None and not allowed:
            raise InsecureEndpointError(
                f"{address} carries no ?key=<the proxy's public key>, so the proxy cannot be authenticated;"
                f" use the endpoint exactly as the cluster printed it, or set {INSECURE_ENV}=1 for a"
                " plain-text cluster"
            )
    return parsed


class CloudClient:
    """Talks to the cloud through `proxies` (endpoints as printed by `shoplist-server cluster`), as the
    client key pair `keys` (public, secret; Z85), or a fresh pair when None. Raises InsecureEndpointError
    (see `server_keys`)."""

    def __init__(
        self,
        proxies: Sequence[str],
        *,
        timeout: float = 2.5,
        attempts: int | None = None,
        context: zmq.asyncio.Context | None = None,
        keys: tuple[str, str] | None = None,
        insecure: bool | None = None,
    ) -> None:
        if not proxies:
            raise ValueError("need at least one proxy endpoint")
        parsed = server_keys(proxies, insecure)
        self.proxies = [address for address, _ in parsed]
        self._server_keys = [key for _, key in parsed]
        self._keys = keys
        self.timeout = timeout
        self.attempts = attempts or 2 * len(self.proxies)
        self._context = context or zmq.asyncio.Context.instance()
        self._current = 0
        self._socket: Any = None
        self._monitor: Any = None
        self._refused: set[str] = set()
        self._ids = itertools.count(1)
        self._prefix = uuid.uuid4().hex[:12]

    @property
    def proxy(self) -> str:
        """Return the proxy endpoint in use now."""
        return self.proxies[self._current]

    async def write(self, list_id: str, delta: ShoppingList | bytes) -> None:
        """Merge `delta` (a list state, or its encoding) into the cloud's copy of `list_id`; return once
        W replicas stored it durably. Raises CloudError (or CloudUnavailable). Safe to retry: merging
        twice changes nothing."""
        body = delta if isinstance(delta, bytes) else delta.to_bytes()
        await self.request(Message(Kind.WRITE, self._next_id(), {"list": list_id}, body))

    async def read(self, list_id: str, replica: str | None = None) -> ShoppingList:
        """Return the cloud's merged copy of `list_id` (empty if nobody wrote it yet)."""
        answer = await self.request(Message(Kind.READ, self._next_id(), {"list": list_id}))
        return ShoppingList.from_bytes(answer.body, replica or new_replica_id())

    async def ping(self) -> Message:
        """Return the proxy's PONG (it names the proxy's publish endpoint)."""
        return await self.request(Message(Kind.PING, self._next_id()))

    async def request(self, message: Message) -> Message:
        """Send `message`, returning the reply; on silence, reconnect to the next proxy and resend."""
        for _attempt in range(self.attempts):
            socket = self._ensure_socket()
            await socket.send_multipart(encode(message))
            while await self._answer_or_refusal(socket):
                try:
                    answer = decode(await socket.recv_multipart())
                except ProtocolError:
                    continue
                if answer.request_id != message.request_id:
                    continue  # a late reply to an earlier attempt
                self._refused.clear()  # what the next failure reports is about the proxies then
                if answer.kind is Kind.ERROR:
                    raise CloudError(str(answer.fields.get("code")), str(answer.fields.get("message")))
                return answer
            self._fail_over()
        tried = ", ".join(self.proxies)
        refused = ", ".join(sorted(self._refused))
        raise CloudUnavailable(
            f"no proxy answered after {self.attempts} attempts ({tried})"
            + (
                f"; {refused} refused the secure handshake: it holds another key than the one pinned in"
                " its endpoint, or it speaks plain text"
                if refused
                else ""
            )
        )

    async def _answer_or_refusal(self, socket: Any) -> bool:
        """Wait for a reply on `socket`; return False after the timeout or when the proxy refused the
        handshake (so the caller fails over at once instead of waiting for a reply that cannot come)."""
        poller = zmq.asyncio.Poller()
        poller.register(socket, zmq.POLLIN)
        poller.register(self._monitor, zmq.POLLIN)
        ready = dict(await poller.poll(int(self.timeout * 1000)))
        if self._monitor in ready:
            await self._monitor.recv_multipart()
            self._refused.add(self.proxy)
            return False
        return socket in ready

    async def subscribe(self, list_ids: Sequence[str]) -> AsyncIterator[tuple[str, ShoppingList]]:
        """Yield (list id, merged delta) for every change to `list_ids`, moving to another proxy when
        the current one goes quiet. Subscribe first, then read, to miss nothing (zguide Clone)."""
        while True:
            pong = await self.ping()
            subscriber = self._context.socket(zmq.SUB)
            _configure(subscriber)
            self._secure(subscriber)  # the publish endpoint serves with the proxy's request key
            subscriber.connect(str(pong.fields["publish"]).partition("?")[0])
            for list_id in list_ids:
                subscriber.setsockopt(zmq.SUBSCRIBE, topic(list_id))
            try:
                async for change in self._changes(subscriber):
                    yield change
            finally:
                subscriber.close(0)

    async def _changes(self, subscriber: Any) -> AsyncIterator[tuple[str, ShoppingList]]:
        while True:
            if not await subscriber.poll(int(self.timeout * 1000), zmq.POLLIN):
                before = self._current
                try:
                    await self.ping()  # quiet: is our proxy still there?
                except CloudUnavailable:
                    return
                if self._current != before:
                    return  # the ping failed over to another proxy: resubscribe there
                continue
            frames = await subscriber.recv_multipart()
            try:
                change = decode(frames[1:])
                yield change.list_id, ShoppingList.from_bytes(change.body, new_replica_id())
            except (ProtocolError, ValueError, IndexError):
                continue

    def close(self) -> None:
        """Close the socket (the client reconnects on next use)."""
        if self._socket is not None:
            if not self._socket.closed:  # a destroyed context closed it already, and its monitor
                self._socket.disable_monitor()
            self._monitor.close(0)
            self._socket.close(0)
            self._socket = None

    def _ensure_socket(self) -> Any:
        if self._socket is None:
            self._socket = self._context.socket(zmq.DEALER)
            _configure(self._socket)
            self._secure(self._socket)
            self._monitor = self._socket.get_monitor_socket(HANDSHAKE_FAILED)
            self._socket.connect(self.proxy)
        return self._socket

    def _secure(self, socket: Any) -> None:
        """Make `socket` a Curve client pinning the current proxy's key (plain text if it has none)."""
        server_key = self._server_keys[self._current]
        if server_key is None:
            return
        if self._keys is None:
            public, secret = zmq.curve_keypair()
            self._keys = (public.decode("ascii"), secret.decode("ascii"))
        socket.setsockopt(zmq.CURVE_SERVERKEY, server_key.encode("ascii"))
        socket.setsockopt(zmq.CURVE_PUBLICKEY, self._keys[0].encode("ascii"))
        socket.setsockopt(zmq.CURVE_SECRETKEY, self._keys[1].encode("ascii"))

    def _fail_over(self) -> None:
        self.close()
        self._current = (self._current + 1) % len(self.proxies)

    def _next_id(self) -> str:
        return f"{self._prefix}-{next(self._ids)}"


def _configure(socket: Any) -> None:
    socket.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)
    socket.setsockopt(zmq.RCVHWM, CLIENT_HWM)
    socket.setsockopt(zmq.SNDHWM, CLIENT_HWM)
    socket.setsockopt(zmq.LINGER, 0)
