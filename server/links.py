"""Outgoing links from a node or proxy to nodes: one DEALER per peer endpoint, each read by its own task,
with request/reply waiting and gossip rounds shared by both shells."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import zmq
import zmq.asyncio

from protocol.messages import Message, ProtocolError, decode, encode
from server import sockets
from server.keys import KeyPair

log = logging.getLogger("shoplist.links")


class Links:
    """DEALER sockets to peer nodes, keyed by endpoint. Replies go to a waiter if one awaits that
    request id, else to `on_reply(endpoint, message)`. `on_lost(endpoint)` hears when a connection
    drops (a peer killed or gone): whatever was sent on it and not yet answered never will be.

    With `keys`, every link is a CurveZMQ client as `keys` that pins the peer's public key, looked up
    through `server_key(endpoint)`; a peer whose key is not known yet is not connected to (sends fail
    as if it were down). With `keys` None, links are plain text."""

    def __init__(
        self,
        context: zmq.asyncio.Context,
        on_reply: Callable[[str, Message], None],
        on_lost: Callable[[str], None] = lambda endpoint: None,
        *,
        keys: KeyPair | None = None,
        server_key: Callable[[str], str | None] = lambda endpoint: None,
    ) -> None:
        self._context = context
        self._keys = keys
        self._server_key = server_key
        self._pinned: dict[str, str | None] = {}
        self._on_reply = on_reply
        self._on_lost = on_lost
        self._sockets: dict[str, Any] = {}
        self._monitors: dict[str, Any] = {}
        self._tasks: dict[str, list[asyncio.Task[None]]] = {}
        self._waiters: dict[str, asyncio.Future[Message]] = {}

    def ensure(self, endpoint: str) -> bool:
        """Connect to `endpoint` unless already connected; return False when its key is not known yet.
        A peer that now announces another key than the link pinned (a node that made new keys) gets a
        new link."""
        key = self._server_key(endpoint) if self._keys is not None else None
        if endpoint in self._sockets:
            if self._pinned[endpoint] == key:
                return True
            log.info("the key of %s changed; reconnecting", endpoint)
            self._drop(endpoint)
        if self._keys is not None and key is None:
            return False
        socket = sockets.configure(self._context.socket(zmq.DEALER), hwm=sockets.PEER_HWM, immediate=True)
        sockets.curve_client(socket, self._keys, key)
        self._pinned[endpoint] = key
        monitor = socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        socket.connect(endpoint)
        self._sockets[endpoint] = socket
        self._monitors[endpoint] = monitor
        self._tasks[endpoint] = [
            asyncio.create_task(self._read(endpoint, socket)),
            asyncio.create_task(self._watch(endpoint, monitor)),
        ]
        return True

    def send(self, endpoint: str, message: Message) -> bool:
        """Queue `message` to `endpoint`; return False when the peer is not connected right now."""
        if not self.ensure(endpoint):
            return False
        return sockets.try_send(self._sockets[endpoint], encode(message))

    async def request(self, endpoint: str, message: Message, timeout: float) -> Message | None:
        """Send `message` and return the reply, or None if unreachable or not answered in time."""
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiters[message.request_id] = future
        try:
            if not self.send(endpoint, message):
                return None
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return None
        finally:
            self._waiters.pop(message.request_id, None)

    async def _read(self, endpoint: str, socket: Any) -> None:
        while True:
            frames = await socket.recv_multipart()
            try:
                message = decode(frames)
            except ProtocolError as problem:
                log.warning("dropped a bad reply from %s: %s", endpoint, problem)
                continue
            waiter = self._waiters.pop(message.request_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(message)
                continue
            try:
                self._on_reply(endpoint, message)
            except Exception:
                log.exception("bug: handling a reply from %s failed", endpoint)

    async def _watch(self, endpoint: str, monitor: Any) -> None:
        while True:
            await monitor.recv_multipart()  # only EVENT_DISCONNECTED is subscribed
            try:
                self._on_lost(endpoint)
            except Exception:
                log.exception("bug: handling the lost connection to %s failed", endpoint)

    def _drop(self, endpoint: str) -> None:
        for task in self._tasks.pop(endpoint):
            task.cancel()
        socket = self._sockets.pop(endpoint)
        socket.disable_monitor()
        self._monitors.pop(endpoint).close(0)
        socket.close(0)
        del self._pinned[endpoint]

    def close(self) -> None:
        """Stop every reader and close every socket."""
        for endpoint in list(self._sockets):
            self._drop(endpoint)
