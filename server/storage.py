"""A node's durable storage in PostgreSQL: lists as a header plus one row per item (so a write into a big
list touches only its items), durable hints, and group commit (one transaction for every write waiting)."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import NamedTuple

import psycopg
from psycopg_pool import AsyncConnectionPool

from crdt import ShoppingList
from crdt.replica import new_replica_id
from server.merkle import list_digest, part_hash

log = logging.getLogger("shoplist.storage")

SCHEMA = """
CREATE TABLE IF NOT EXISTS lists (list_id text PRIMARY KEY, header bytea NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    list_id text NOT NULL, key text NOT NULL, record bytea NOT NULL, PRIMARY KEY (list_id, key));
CREATE TABLE IF NOT EXISTS hints (
    id bigserial PRIMARY KEY, target text NOT NULL, list_id text NOT NULL, body bytea NOT NULL);
CREATE INDEX IF NOT EXISTS hints_target ON hints (target, id);
CREATE TABLE IF NOT EXISTS node_state (key text PRIMARY KEY, value text NOT NULL);
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
LOAD_LIST = """
SELECT header, NULL::bytea FROM lists WHERE list_id = %(list_id)s
UNION ALL
SELECT NULL::bytea, record FROM items
WHERE list_id = %(list_id)s AND EXISTS (SELECT 1 FROM lists WHERE list_id = %(list_id)s)
"""
REFUSED_WRITES = (psycopg.DataError, psycopg.IntegrityError)
"""Errors that say the database refused what one write holds, rather than that it is unreachable."""
CACHE_LISTS = 2048
CACHE_BYTES = 16 * 1024 * 1024
"""Default memory budget of the list cache. Bounded by bytes as well as by count: a few hostile writers
can grow lists without end (any item names, any replicas), and 2,048 big lists would not fit a node."""
BYTES_PER_STORED_BYTE = 16
"""A decoded list takes about 16 times the bytes of its header and item records (measured on lists of
10 to 500 items and 1 to 50 writers: 15 to 17)."""
BYTES_PER_LIST = 1024
"""Memory a cached list costs besides its records: the empty list, its cache and digest entries."""
MAX_BATCH = 256


class _Summary(NamedTuple):
    """What the storage keeps about a cached list besides the list: its digest and its stored size."""

    digest: int
    header_hash: int
    header_size: int
    stored_size: int  # bytes of its header and item records

    def memory(self) -> int:
        """Return the estimated memory the cached list takes."""
        return BYTES_PER_LIST + BYTES_PER_STORED_BYTE * self.stored_size


@dataclass
class _ListLock:
    """A list's lock and how many callers hold it or wait for it (the entry goes when none does)."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


@dataclass
class _Job:
    """One unit of a group commit: rows to write and the future to resolve once they are durable."""

    list_id: str = ""
    header: bytes = b""
    items: dict[str, bytes | None] = field(default_factory=dict)
    hint: tuple[str, str, bytes] | None = None
    delete: bool = False
    epoch: int = 0
    done: asyncio.Future[None] | None = None


class StaleWriteError(RuntimeError):
    """A write was built on an earlier write of the same list that failed, so it is not written either."""


class Storage:
    """Lists and hints of one node. Writes resolve only after their transaction committed.

    Every list also has a digest (merkle.list_digest over its header and item records), kept up to date
    from just the records a write touches; `on_change(list_id, digest)` hears each committed change
    (digest None: the list was dropped), which is how the node's digest tree stays current."""

    def __init__(self, uri: str, cache_bytes: int = CACHE_BYTES) -> None:
        self.on_change: Callable[[str, int | None], None] | None = None
        self.cache_bytes = cache_bytes
        self._digests: dict[str, _Summary] = {}  # cached list -> its digest and size
        self._cached_bytes = 0  # estimated memory of the cached lists
        self._committing: dict[str, int] = {}  # list -> writes queued but not yet committed
        # list -> how many of its writes failed while writes of it were in flight (stale jobs are not
        # written); forgotten once none is, as no job built on the failed write is left then
        self._epochs: dict[str, int] = {}
        self._pool = AsyncConnectionPool(uri, min_size=2, max_size=4, open=False, kwargs={"autocommit": True})
        self._cache: OrderedDict[str, ShoppingList] = OrderedDict()
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._locks: dict[str, _ListLock] = {}  # only lists someone holds or waits for

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
        async with self._holding(list_id):
            current = await self._load(list_id)
            # Items the delta does not carry but whose writes it has seen (removed or overwritten).
            touched = delta.item_keys() | current._keys_overwritten_by(delta)
            before = {key: current.item_bytes(key) for key in touched}
            current.merge(delta)
            items = {key: current.item_bytes(key) for key in touched}
            job = _Job(list_id, current.header_bytes(), items, epoch=self._epochs.get(list_id, 0))
            digest = self._advance_digest(list_id, job.header, before, job.items)
            self._committing[list_id] = self._committing.get(list_id, 0) + 1
            self._evict(keep=list_id)  # the list grew
        try:
            await self._commit(job)  # on failure the writer already dropped the cached list (`_fail`)
        finally:
            self._committing[list_id] -= 1
            if not self._committing[list_id]:
                del self._committing[list_id]
                self._epochs.pop(list_id, None)
        self._report(list_id, digest)
        return current

    def digest(self, list_id: str) -> int | None:
        """Return the digest of a cached list (None when it is not in memory)."""
        cached = self._digests.get(list_id)
        return cached.digest if cached else None

    def cache_status(self) -> dict[str, int]:
        """Return how many lists the cache holds, their estimated memory and its budget, in bytes."""
        return {"lists": len(self._cache), "bytes": self._cached_bytes, "budget": self.cache_bytes}

    async def drop(self, list_id: str, expected_digest: int) -> bool:
        """Delete this node's copy of `list_id` if its digest is still `expected_digest` (no write came in
        since the new owners confirmed it); return whether it was deleted."""
        async with self._holding(list_id):
            await self._load(list_id)
            cached = self._digests.get(list_id)
            if cached is None or cached.digest != expected_digest or self._committing.get(list_id):
                return False
            await self._commit(_Job(list_id, delete=True))
            self._forget(list_id)
        self._report(list_id, None)
        return True

    async def scan_digests(self) -> dict[str, int]:
        """Return {list id: digest} for every stored list, computed from the stored records (run at start,
        and by the scrub, so an edit made behind the node's back shows up in its digest tree)."""
        headers: dict[str, bytes] = {}
        digests: dict[str, int] = {}
        # A named (server-side) cursor lives in a transaction, and the pool connections autocommit.
        async with self._pool.connection() as connection, connection.transaction():
            cursor = await connection.execute("SELECT list_id, header FROM lists")
            for list_id, header in await cursor.fetchall():
                headers[list_id] = bytes(header)
                digests[list_id] = part_hash(bytes(header))
            async with connection.cursor(name="scan_items") as items:
                await items.execute("SELECT list_id, record FROM items")
                async for list_id, record in items:
                    if list_id in digests:
                        digests[list_id] ^= part_hash(bytes(record))
        return digests

    async def stored_digests(self, list_ids: list[str]) -> dict[str, int | None]:
        """Re-read `list_ids` from disk, bypassing the cache, and return {list id: stored digest, None when
        the list is not stored}. Lists with a write still being committed are left out (checked later)."""
        found: dict[str, int | None] = {}
        for list_id in list_ids:
            async with self._holding(list_id):
                if self._committing.get(list_id):
                    continue
                self._forget(list_id)
                if not await self._exists(list_id):
                    found[list_id] = None
                    continue
                await self._load(list_id)
                found[list_id] = self._digests[list_id].digest
        return found

    async def get_state(self, key: str) -> str | None:
        """Return a value this node saved about itself (e.g. that it is leaving), or None."""
        async with self._pool.connection() as connection:
            cursor = await connection.execute("SELECT value FROM node_state WHERE key = %s", (key,))
            row = await cursor.fetchone()
            return str(row[0]) if row else None

    async def set_state(self, key: str, value: str | None) -> None:
        """Save (or with None, forget) a value about this node, durably."""
        async with self._pool.connection() as connection:
            if value is None:
                await connection.execute("DELETE FROM node_state WHERE key = %s", (key,))
            else:
                await connection.execute(
                    "INSERT INTO node_state (key, value) VALUES (%s, %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    (key, value),
                )

    async def _exists(self, list_id: str) -> bool:
        async with self._pool.connection() as connection:
            cursor = await connection.execute("SELECT 1 FROM lists WHERE list_id = %s", (list_id,))
            return await cursor.fetchone() is not None

    async def list_ids_after(self, after: str, limit: int) -> list[str]:
        """Return up to `limit` stored list ids greater than `after`, in order (the scrub walks these)."""
        async with self._pool.connection() as connection:
            cursor = await connection.execute(
                "SELECT list_id FROM lists WHERE list_id > %s ORDER BY list_id LIMIT %s", (after, limit)
            )
            return [row[0] for row in await cursor.fetchall()]

    def _advance_digest(
        self, list_id: str, header: bytes, before: dict[str, bytes | None], after: dict[str, bytes | None]
    ) -> int:
        """Update the cached digest and size of `list_id` from the records a merge rewrote; return the
        digest."""
        summary = self._digests[list_id]
        new_header_hash = part_hash(header)
        digest = summary.digest ^ summary.header_hash ^ new_header_hash
        size = summary.stored_size - summary.header_size + len(header)
        for key, old in before.items():
            new = after.get(key)
            if old != new:
                digest ^= (part_hash(old) if old is not None else 0) ^ (
                    part_hash(new) if new is not None else 0
                )
                size += (len(new) if new is not None else 0) - (len(old) if old is not None else 0)
        self._remember(list_id, _Summary(digest, new_header_hash, len(header), size))
        return digest

    def _remember(self, list_id: str, summary: _Summary) -> None:
        """Keep `summary` for the cached `list_id`, counting its memory in the cache's."""
        previous = self._digests.get(list_id)
        self._cached_bytes += summary.memory() - (previous.memory() if previous else 0)
        self._digests[list_id] = summary

    def _report(self, list_id: str, digest: int | None) -> None:
        if self.on_change is not None:
            self.on_change(list_id, digest)

    def _forget(self, list_id: str) -> None:
        self._cache.pop(list_id, None)
        summary = self._digests.pop(list_id, None)
        if summary is not None:
            self._cached_bytes -= summary.memory()

    @asynccontextmanager
    async def _holding(self, list_id: str) -> AsyncIterator[None]:
        """Hold the lock of `list_id`. The lock exists only while someone holds or waits for it, so a
        stream of reads of made-up list ids leaves nothing behind."""
        entry = self._locks.get(list_id)
        if entry is None:
            entry = self._locks[list_id] = _ListLock()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if not entry.users:
                del self._locks[list_id]

    async def read(self, list_id: str) -> ShoppingList:
        """Return a copy of the stored list (empty if this node has none)."""
        async with self._holding(list_id):
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
        """Return the cached list, loading it from disk on a miss. Callers hold the list's lock: a load
        that overlapped a merge would otherwise cache rows older than the merge, and the next merge
        would write a header without the first one's dots next to its item rows."""
        cached = self._cache.get(list_id)
        if cached is not None:
            self._cache.move_to_end(list_id)
            return cached
        async with self._pool.connection() as connection:
            # One statement, so the header and the item records come from one snapshot.
            cursor = await connection.execute(LOAD_LIST, {"list_id": list_id}, prepare=True)
            rows = await cursor.fetchall()
        cached = self._cache.get(list_id)
        if cached is not None:  # loaded meanwhile, and perhaps merged into: the rows read may be older
            return cached
        found = [bytes(header) for header, _ in rows if header is not None]
        if not found:
            loaded = ShoppingList(new_replica_id())
            header, records = loaded.header_bytes(), []
        else:
            header, records = found[0], [bytes(record) for _, record in rows if record is not None]
            loaded = ShoppingList.from_parts(header, records)
        self._cache[list_id] = loaded
        size = len(header) + sum(len(record) for record in records)
        self._remember(list_id, _Summary(list_digest(header, records), part_hash(header), len(header), size))
        self._evict(keep=list_id)
        return loaded

    def _over_budget(self) -> bool:
        return len(self._cache) > CACHE_LISTS or self._cached_bytes > self.cache_bytes

    def _evict(self, keep: str) -> None:
        """Drop the least recently used lists while the cache holds more than CACHE_LISTS lists or more
        than `cache_bytes`, but never `keep` (its caller holds its lock and is using it) nor one with a
        write in flight: its cached copy is ahead of disk, and a merge that reloaded the list from disk
        would build a header without that write's dots while the write's item rows still land. A list
        bigger than the whole budget stays only while it is in use."""
        if not self._over_budget():
            return
        for list_id in list(self._cache):
            if not self._over_budget():
                return
            if list_id != keep and not self._committing.get(list_id):
                self._forget(list_id)

    def _fail(self, job: _Job, problem: BaseException) -> None:
        """Fail `job` and every write of its list queued after it, which was built on its cached copy:
        written without it, their header would claim its changes and its item rows would be missing."""
        if job.list_id and not job.delete and job.epoch == self._epochs.get(job.list_id, 0):
            self._epochs[job.list_id] = job.epoch + 1
            self._forget(job.list_id)  # memory is ahead of disk now: reload it next time
        _settle(job, problem)

    def _stale(self, job: _Job) -> bool:
        """Return whether `job` was built on a write that failed."""
        return bool(job.list_id) and not job.delete and job.epoch != self._epochs.get(job.list_id, 0)

    async def _commit(self, job: _Job) -> None:
        job.done = asyncio.get_running_loop().create_future()
        await self._queue.put(job)
        await job.done

    async def _write_loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < MAX_BATCH:
                batch.append(self._queue.get_nowait())
            batch = self._drop_stale(batch)
            if not batch:
                continue
            try:
                await self._write_batch(batch)
            except Exception as problem:  # the environment's fault (database down): each writer hears it
                log.error("group commit of %d writes failed: %s", len(batch), problem)
                if len(batch) == 1 or not isinstance(problem, REFUSED_WRITES):
                    for job in batch:
                        self._fail(job, problem)
                    continue
                # One write the database refuses must not fail the others: try each alone. (Not when the
                # database is down or out of connections: trying each alone would only wait longer.)
                for job in batch:
                    if not self._drop_stale([job]):
                        continue
                    try:
                        await self._write_batch([job])
                    except Exception as alone:
                        self._fail(job, alone)
                    else:
                        _settle(job, None)
                continue
            for job in batch:
                _settle(job, None)

    def _drop_stale(self, batch: list[_Job]) -> list[_Job]:
        """Fail the jobs of `batch` built on a failed write; return the others."""
        for job in batch:
            if self._stale(job):
                _settle(job, StaleWriteError(f"an earlier write of list {job.list_id} failed"))
        return [job for job in batch if not self._stale(job)]

    async def _write_batch(self, batch: list[_Job]) -> None:
        """Write every job of `batch` in one statement: one round trip, one transaction, one WAL flush."""
        headers: dict[str, bytes] = {}
        items: dict[tuple[str, str], bytes | None] = {}
        hints = []
        deletes_lists: list[str] = []
        for job in batch:
            if job.hint:
                hints.append(job.hint)
                continue
            if job.delete:
                deletes_lists.append(job.list_id)
                headers.pop(job.list_id, None)
                items = {key: record for key, record in items.items() if key[0] != job.list_id}
                continue
            headers[job.list_id] = job.header
            for key, record in job.items.items():
                items[(job.list_id, key)] = record
        if deletes_lists:  # handoff drops are rare: the plain transaction keeps their order simple
            await self._write_with_drops(headers, items, hints, deletes_lists)
            return
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

    async def _write_with_drops(
        self,
        headers: dict[str, bytes],
        items: dict[tuple[str, str], bytes | None],
        hints: list[tuple[str, str, bytes]],
        deletes_lists: list[str],
    ) -> None:
        """Write a batch that also drops whole lists, as one transaction of several statements."""
        async with (
            self._pool.connection() as connection,
            connection.transaction(),
            connection.cursor() as cur,
        ):
            if headers:
                await cur.executemany(
                    "INSERT INTO lists (list_id, header) VALUES (%s, %s) "
                    "ON CONFLICT (list_id) DO UPDATE SET header = EXCLUDED.header",
                    list(headers.items()),
                )
            upserts = [
                (list_id, key, record) for (list_id, key), record in items.items() if record is not None
            ]
            deletes = [(list_id, key) for (list_id, key), record in items.items() if record is None]
            if upserts:
                await cur.executemany(
                    "INSERT INTO items (list_id, key, record) VALUES (%s, %s, %s) "
                    "ON CONFLICT (list_id, key) DO UPDATE SET record = EXCLUDED.record",
                    upserts,
                )
            if deletes:
                await cur.executemany("DELETE FROM items WHERE list_id = %s AND key = %s", deletes)
            if deletes_lists:
                await cur.execute("DELETE FROM items WHERE list_id = ANY(%s)", (deletes_lists,))
                await cur.execute("DELETE FROM lists WHERE list_id = ANY(%s)", (deletes_lists,))
            if hints:
                await cur.executemany("INSERT INTO hints (target, list_id, body) VALUES (%s, %s, %s)", hints)


def _settle(job: _Job, problem: BaseException | None) -> None:
    """Tell the writer waiting on `job` that it is durable, or why it is not."""
    if job.done is None or job.done.done():
        return
    if problem is None:
        job.done.set_result(None)
    else:
        job.done.set_exception(problem)
