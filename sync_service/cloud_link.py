"""The syncer's view of the cloud: concurrent requests over a small pool of cloud clients (a client's
socket serves one request at a time) and one subscription that follows every list of the home."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import zmq.asyncio

from sync_service.client import CloudClient

log = logging.getLogger("shoplist.sync")


class CloudLink:
    """Implements the syncer's `CloudClient` protocol over `sync_service.client.CloudClient`."""

    def __init__(
        self, proxies: Sequence[str], *, timeout: float = 2.5, keys: tuple[str, str] | None = None
    ) -> None:
        self._proxies = list(proxies)
        self._timeout = timeout
        self._keys = keys
        """The home's client key pair (public, secret), shared by every client of this link."""
        self._context = zmq.asyncio.Context()
        self._idle: list[CloudClient] = []
        self._subscribed: set[str] = set()
        self._updates: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue()
        self._watcher: asyncio.Task[None] | None = None
        self._last_proxy = ""

    async def write(self, list_id: str, delta: bytes) -> None:
        """Store `delta` in the cloud (W durable acks). Raises CloudUnavailable or CloudError."""
        client = self._borrow()
        try:
            await client.write(list_id, delta)
        finally:
            self._idle.append(client)

    async def read(self, list_id: str) -> bytes | None:
        """Return the cloud's state of the list, or None when it holds nothing yet."""
        client = self._borrow()
        try:
            state = await client.read(list_id)
        finally:
            self._idle.append(client)
        return None if state.is_empty() else state.to_bytes()

    async def subscribe(self, list_id: str) -> None:
        """Follow `list_id` too (the subscription restarts with the larger set)."""
        if list_id in self._subscribed:
            return
        self._subscribed.add(list_id)
        if self._watcher is not None:
            self._watcher.cancel()
        self._watcher = asyncio.get_running_loop().create_task(self._watch(sorted(self._subscribed)))

    async def next_update(self) -> tuple[str, bytes] | None:
        """Return the next published change, or None after the subscription moved to another proxy
        (changes published meanwhile may have been missed)."""
        return await self._updates.get()

    def describe(self) -> str:
        """Return the proxies for people to read."""
        return "cloud via " + ", ".join(endpoint.split("?")[0] for endpoint in self._proxies)

    def close(self) -> None:
        """Close every socket."""
        if self._watcher is not None:
            self._watcher.cancel()
        for client in self._idle:
            client.close()
        self._context.destroy(linger=0)

    async def _watch(self, list_ids: list[str]) -> None:
        subscriber = self._client()
        while True:
            try:
                async for list_id, delta in subscriber.subscribe(list_ids):
                    if subscriber.proxy != self._last_proxy:
                        if self._last_proxy:
                            self._updates.put_nowait(None)
                        self._last_proxy = subscriber.proxy
                    self._updates.put_nowait((list_id, delta.to_bytes()))
            except asyncio.CancelledError:
                subscriber.close()
                raise
            except Exception as error:  # the cloud is down: the syncer sees that through its requests
                log.info("subscription lost (%s); retrying", error)
                with contextlib.suppress(Exception):
                    await asyncio.sleep(self._timeout)

    def _borrow(self) -> CloudClient:
        if self._idle:
            return self._idle.pop()
        return self._client()

    def _client(self) -> CloudClient:
        return CloudClient(self._proxies, timeout=self._timeout, context=self._context, keys=self._keys)
