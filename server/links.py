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

log = logging.getLogger("shoplist.links")


class Links:
    """DEALER sockets to peer nodes, keyed by endpoint. Replies go to a waiter if one awaits that
    request id, else to `on_reply(endpoint, message)`. `on_lost(endpoint)` hears when a connection
    drops (a peer killed or gone): whatever was sent on it and not yet answered never will be."""

    def __init__(
        self,
        context: zmq.asyncio.Context,
        on_reply: Callable[[str, Message], None],
        on_lost: Callable[[str], None] = lambda endpoint: None,
    ) -> None:
        self._context = context
        self._on_reply = on_reply
        self._on_lost = on_lost
        self._sockets: dict[str, Any] = {}
        self._monitors: dict[str, Any] = {}
        self._tasks: dict[str, list[asyncio.Task[None]]] = {}
        self._waiters: dict[str, asyncio.Future[Message]] = {}

    def ensure(self, endpoint: str) -> None:
        """Connect to `endpoint` unless already connected."""
        if endpoint in self._sockets:
            return
        socket = sockets.configure(self._context.socket(zmq.DEALER), hwm=sockets.PEER_HWM, immediate=True)
        monitor = socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        socket.connect(endpoint)
        self._sockets[endpoint] = socket
        self._monitors[endpoint] = monitor
        self._tasks[endpoint] = [
            asyncio.create_task(self._read(endpoint, socket)),
            asyncio.create_task(self._watch(endpoint, monitor)),
        ]

    def send(self, endpoint: str, message: Message) -> bool:
        """Queue `message` to `endpoint`; return False when the peer is not connected right now."""
        self.ensure(endpoint)
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

    def close(self) -> None:
        """Stop every reader and close every socket."""
        for tasks in self._tasks.values():
            for task in tasks:
                task.cancel()
        for endpoint, socket in self._sockets.items():
            socket.disable_monitor()
            self._monitors[endpoint].close(0)
            socket.close(0)
