"""The cloud client's sockets: closing is safe in every state the client can be left in."""

from __future__ import annotations

import zmq.asyncio

from sync_service.client import CloudClient

KEY = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"


def test_closing_a_client_whose_context_was_destroyed_first_does_nothing() -> None:
    # CloudLink.close cancels its subscription task and destroys the context at once; the task then
    # closes its client, whose sockets the context already closed.
    context = zmq.asyncio.Context()
    client = CloudClient([f"tcp://127.0.0.1:5555?key={KEY}"], context=context)
    client._ensure_socket()
    context.destroy(linger=0)
    client.close()
    client.close()
