"""Every socket a proxy or a client opens limits the size of inbound frames and its queues, explicitly."""

from __future__ import annotations

from typing import Any

import zmq
import zmq.asyncio

from protocol.endpoints import with_key
from protocol.messages import MAX_FRAME_BYTES
from server import sockets
from server.keys import generate
from server.proxy_service import ProxyService, ProxySettings
from sync_service.client import CLIENT_HWM, CloudClient


def _limits(socket: Any) -> tuple[int, int, int]:
    return socket.getsockopt(zmq.MAXMSGSIZE), socket.getsockopt(zmq.SNDHWM), socket.getsockopt(zmq.RCVHWM)


def test_every_proxy_socket_limits_frames_and_queues() -> None:
    settings = ProxySettings("p", "tcp://127.0.0.1:1", "tcp://127.0.0.1:2", (), client_hwm=32)
    service = ProxyService(settings)
    try:
        assert _limits(service.front) == (MAX_FRAME_BYTES, 32, 32)
        assert _limits(service.publisher) == (sockets.MAX_SUBSCRIPTION_BYTES, sockets.PEER_HWM, 32)
        assert service.publisher.getsockopt(zmq.TYPE) == zmq.XPUB
    finally:
        for socket in (service.front, service.publisher):
            socket.close(0)
        service.links.close()
        service.context.term()


def test_the_clients_sockets_limit_frames_and_queues() -> None:
    context = zmq.asyncio.Context()
    client = CloudClient([with_key("tcp://127.0.0.1:9", generate().public)], context=context)
    try:
        assert _limits(client._ensure_socket()) == (MAX_FRAME_BYTES, CLIENT_HWM, CLIENT_HWM)
    finally:
        client.close()
        context.term()
