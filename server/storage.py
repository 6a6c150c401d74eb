"""A node's durable storage in PostgreSQL: lists as a header plus one row per item (so a write into a big
list touches only its items), durable hints, and group commit (one transaction for every write waiting)."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass, field

from psycopg_pool import AsyncConnectionPool

from crdt import ShoppingList
from crdt.replica import new_replica_id

log = logging.getLogger("shoplist.storage")

SCHEMA = """
CREATE TABLE IF NOT EXISTS lists (list_id text PRIMARY KEY, header bytea NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    list_id text NOT NULL, key text NOT NULL, record bytea NOT NULL, PRIMARY KEY (list_id, key));
CREATE TABLE IF NOT EXISTS hints (
    id bigserial PRIMARY KEY, target text NOT NULL, list_id text NOT NULL, body bytea NOT NULL);
CREATE INDEX IF NOT EXISTS hints_target ON hints (target, id);
"""
WRITE_BATCH = """
WITH new_headers AS (
    INSERT INTO lists (list_id, header)
    SELECT * FROM unnest(%(list_ids)s::text[], %(headers)s::bytea[])
    ON CONFLICT (list_id) DO UPDATE SET header = EXCLUDED.header),
new_items AS (
    INSERT INTO items (list_id, key, record)
    SELECT * FROM unnest(%(item_lists)s::text[], %(item_keys)s::text[], %(item_records)s::bytea[])
    ON CONFLICT (list_id, key) DO UPDATE SET record = EXCLUDED.record),
gone_items AS (
    DELETE FROM items USING unnest(%(gone_lists)s::text[], %(gone_keys)s::text[]) AS gone (list_id, key)
    WHERE items.list_id = gone.list_id AND items.key = gone.key),
new_hints AS (
    INSERT INTO hints (target, list_id, body)
    SELECT * FROM unnest(%(hint_targets)s::text[], %(hint_lists)s::text[], %(hint_bodies)s::bytea[]))
SELECT 1
"""
"""A group commit as one statement on an autocommit connection: atomic (a statement is a transaction)
and durable once it returns (synchronous_commit), in a single round trip instead of one per table."""
CACHE_LISTS = 2048
MAX_BATCH = 256


@dataclass
class _Job:
    """One unit of a group commit: rows to write and the future to resolve once they are durable."""

    list_id: str = ""
    header: bytes = b""
    items: dict[str, bytes | None] = field(default_factory=dict)
    hint: tuple[str, str, bytes] | None = None
    done: asyncio.Future[None] | None = None


class Storage:
    """Lists and hints of one node. Writes resolve only after their transaction committed."""

    def __init__(self, uri: str) -> None:
        self._pool = AsyncConnectionPool(uri, min_size=2, max_size=4, open=False, kwargs={"autocommit": True})
        self._cache: OrderedDict[str, ShoppingList] = OrderedDict()
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._locks: dict[str, asyncio.Lock] = {}

    async def open(self) -> None:
        """Connect, create the tables if needed, and start the group-commit writer."""
        await self._pool.open(wait=True, timeout=30)
        async with self._pool.connection() as connection:
            await connection.execute(SCHEMA)
        self._writer = asyncio.create_task(self._write_loop())

    async def close(self) -> None:
        """Stop the writer and close every connection."""
        if self._writer:
            self._writer.cancel()
        await self._pool.close()

    async def merge(self, list_id: str, delta: ShoppingList) -> ShoppingList:
        """Merge `delta` into the stored list and return once it is durable. Only the header and the
        items the delta touches are rewritten."""
        lock = self._locks.setdefault(list_id, asyncio.Lock())
        async with lock:
            current = await self._load(list_id)
            # Items the delta does not carry but whose writes it has seen (removed or overwritten).
            touched = delta.item_keys() | current._keys_overwritten_by(delta)
            current.merge(delta)
            job = _Job(list_id, current.header_bytes(), {key: current.item_bytes(key) for key in touched})
        try:
            await self._commit(job)
        except Exception:
            self._cache.pop(list_id, None)  # memory may be ahead of disk now: reload next time
            raise
        return current

    async def read(self, list_id: str) -> ShoppingList:
        """Return a copy of the stored list (empty if this node has none)."""
        return (await self._load(list_id)).copy()

    async def add_hint(self, target: str, list_id: str, body: bytes) -> None:
        """Keep `body` for `target` durably until it is handed back."""
        await self._commit(_Job(hint=(target, list_id, body)))

    async def hints_for(self, target: str, limit: int = 64) -> list[tuple[int, str, bytes]]:
        """Return up to `limit` (id, list id, body) hints held for `target`, oldest first."""
        async with self._pool.connection() as connection:
            cursor = await connection.execute(
                "SELECT id, list_id, body FROM hints WHERE target = %s ORDER BY id LIMIT %s", (target, limit)
            )
            return [(row[0], row[1], bytes(row[2])) for row in await cursor.fetchall()]

    async def delete_hints(self, ids: list[int]) -> None:
        """Forget hints that their owner acknowledged."""
        async with self._pool.connection() as connection:
            await connection.execute("DELETE FROM hints WHERE id = ANY(%s)", (ids,))

    async def hint_counts(self) -> dict[str, int]:
        """Return how many hints are held per owner."""
        async with self._pool.connection() as connection:
            cursor = await connection.execute("SELECT target, count(*) FROM hints GROUP BY target")
            return {row[0]: int(row[1]) for row in await cursor.fetchall()}

    async def _load(self, list_id: str) -> ShoppingList:
        cached = self._cache.get(list_id)
        if cached is not None:
            self._cache.move_to_end(list_id)
            return cached
        async with self._pool.connection() as connection:
            cursor = await connection.execute("SELECT header FROM lists WHERE list_id = %s", (list_id,))
            row = await cursor.fetchone()
            if row is None:
                loaded = ShoppingList(new_replica_id())
            else:
                cursor = await connection.execute("SELECT record FROM items WHERE list_id = %s", (list_id,))
                records = [bytes(item[0]) for item in await cursor.fetchall()]
                loaded = ShoppingList.from_parts(bytes(row[0]), records)
        self._cache[list_id] = loaded
        while len(self._cache) > CACHE_LISTS:
            self._cache.popitem(last=False)
        return loaded

    async def _commit(self, job: _Job) -> None:
        job.done = asyncio.get_running_loop().create_future()
        await self._queue.put(job)
        await job.done

    async def _write_loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < MAX_BATCH:
                batch.append(self._queue.get_nowait())
            try:
                await self._write_batch(batch)
            except Exception as problem:  # the environment's fault (database down): each writer hears it
                log.error("group commit of %d writes failed: %s", len(batch), problem)
                for job in batch:
                    if job.done and not job.done.done():
                        job.done.set_exception(problem)
                continue
            for job in batch:
                if job.done and not job.done.done():
                    job.done.set_result(None)

    async def _write_batch(self, batch: list[_Job]) -> None:
        """Write every job of `batch` in one statement: one round trip, one transaction, one WAL flush."""
        headers: dict[str, bytes] = {}
        items: dict[tuple[str, str], bytes | None] = {}
        hints = []
        for job in batch:
            if job.hint:
                hints.append(job.hint)
                continue
            headers[job.list_id] = job.header
            for key, record in job.items.items():
                items[(job.list_id, key)] = record
        upserts = [(list_id, key, record) for (list_id, key), record in items.items() if record is not None]
        deletes = [(list_id, key) for (list_id, key), record in items.items() if record is None]
        parameters = {
            "list_ids": list(headers),
            "headers": list(headers.values()),
            "item_lists": [row[0] for row in upserts],
            "item_keys": [row[1] for row in upserts],
            "item_records": [row[2] for row in upserts],
            "gone_lists": [row[0] for row in deletes],
            "gone_keys": [row[1] for row in deletes],
            "hint_targets": [hint[0] for hint in hints],
            "hint_lists": [hint[1] for hint in hints],
            "hint_bodies": [hint[2] for hint in hints],
        }
        async with self._pool.connection() as connection:
            await connection.execute(WRITE_BATCH, parameters, prepare=True)
