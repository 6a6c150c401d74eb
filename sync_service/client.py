"""The cloud client: write deltas, read lists and subscribe to changes through any of several proxies
(asyncio + pyzmq; Lazy Pirate retries with failover to the next proxy, zguide chapter 4).

One `CloudClient` owns one DEALER socket and belongs to the asyncio task that uses it: never share one
across threads, and give each concurrent task its own client (they may share a zmq context).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import zmq
import zmq.asyncio

from crdt import ShoppingList
from crdt.replica import new_replica_id
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


class CloudError(Exception):
    """The cloud answered with an error (`code` says which, see docs/protocol.md)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class CloudUnavailable(CloudError):
    """No proxy answered in time: the network or the whole cloud is down (the environment's fault)."""

    def __init__(self, message: str) -> None:
        super().__init__("unavailable", message)


class CloudClient:
    """Talks to the cloud through `proxies` (endpoints as printed by `shoplist-server cluster`)."""

    def __init__(
        self,
        proxies: Sequence[str],
        *,
        timeout: float = 2.5,
        attempts: int | None = None,
        context: zmq.asyncio.Context | None = None,
    ) -> None:
        if not proxies:
            raise ValueError("need at least one proxy endpoint")
        self.proxies = [endpoint.split("?")[0] for endpoint in proxies]
        self.timeout = timeout
        self.attempts = attempts or 2 * len(self.proxies)
        self._context = context or zmq.asyncio.Context.instance()
        self._current = 0
        self._socket: Any = None
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
            while await socket.poll(int(self.timeout * 1000), zmq.POLLIN):
                try:
                    answer = decode(await socket.recv_multipart())
                except ProtocolError:
                    continue
                if answer.request_id != message.request_id:
                    continue  # a late reply to an earlier attempt
                if answer.kind is Kind.ERROR:
                    raise CloudError(str(answer.fields.get("code")), str(answer.fields.get("message")))
                return answer
            self._fail_over()
        tried = ", ".join(self.proxies)
        raise CloudUnavailable(f"no proxy answered after {self.attempts} attempts ({tried})")

    async def subscribe(self, list_ids: Sequence[str]) -> AsyncIterator[tuple[str, ShoppingList]]:
        """Yield (list id, merged delta) for every change to `list_ids`, moving to another proxy when
        the current one goes quiet. Subscribe first, then read, to miss nothing (zguide Clone)."""
        while True:
            pong = await self.ping()
            subscriber = self._context.socket(zmq.SUB)
            _configure(subscriber)
            subscriber.connect(str(pong.fields["publish"]))
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
            self._socket.close(0)
            self._socket = None

    def _ensure_socket(self) -> Any:
        if self._socket is None:
            self._socket = self._context.socket(zmq.DEALER)
            _configure(self._socket)
            self._socket.connect(self.proxy)
        return self._socket

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
