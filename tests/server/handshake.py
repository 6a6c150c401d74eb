"""How a connection's CurveZMQ handshake ends, as libzmq's socket monitor reports it: the probe the
transport security tests use instead of waiting for replies that never come."""

from __future__ import annotations

import zmq
from zmq.utils.monitor import recv_monitor_message

from protocol.endpoints import split_endpoint
from server.keys import KeyPair
from server.sockets import curve_client

HANDSHAKE_EVENTS = (
    zmq.EVENT_HANDSHAKE_SUCCEEDED
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)

REFUSED = {
    zmq.Event.HANDSHAKE_FAILED_NO_DETAIL,
    zmq.Event.HANDSHAKE_FAILED_PROTOCOL,
    zmq.Event.HANDSHAKE_FAILED_AUTH,
}


def handshake(endpoint: str, identity: KeyPair | None, server_key: str | None = None) -> zmq.Event:
    """Connect a DEALER to `endpoint` (a Curve client when `identity` is given) and return how its first
    handshake ended, as libzmq reports it."""
    address, pinned = split_endpoint(endpoint)
    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    curve_client(socket, identity, server_key or pinned)
    monitor = socket.get_monitor_socket(HANDSHAKE_EVENTS)
    try:
        socket.connect(address)
        assert monitor.poll(30_000), "the handshake never ended"
        return zmq.Event(recv_monitor_message(monitor)["event"])
    finally:
        socket.disable_monitor()
        monitor.close(0)
        socket.close(0)
