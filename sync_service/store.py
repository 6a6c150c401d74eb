"""The local store API: each edit is one transaction (lock, merge, write, outbox, NOTIFY); readers LISTEN."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from crdt import ItemView, ShoppingList, item_key, new_replica_id
from sync_service import identity, postgres_server, schema
from sync_service.errors import (
    AmbiguousListError,
    CorruptStateError,
    EnvironmentProblem,
    ListNotFoundError,
    UsageError,
)
from sync_service.home import DATABASE_URL_ENV, SOCKET_NAME, Home

CHANNEL = "shoplist_changes"
SYNC_CHANNEL = "shoplist_sync"
SYNC_STATUS_CHANGED = "#sync-status"  # in wait_for_change's result; never a list id
SYNC_REQUESTED = "#sync-now"  # in wait_for_change's result when a window asked the service to sync now
SYNC_SERVICE_LOCK = 0x5A0B_5317  # held by the one running sync service of a home, for its lifetime

Connection = psycopg.Connection[tuple[Any, ...]]


@dataclass(frozen=True)
class ListSummary:
    """One line of `shoplist lists`."""

    id: str
    title: str
    items: int
    shared: bool = False


@dataclass(frozen=True)
class ListView:
    """A whole list as a user sees it, items sorted by category, then name."""

    id: str
    title: str
    items: list[ItemView]


@dataclass(frozen=True)
class RemoteMerge:
    """What merging another replica's change did to a list: the title before and after, and each
    changed item as it was and as it is (None where absent)."""

    created: bool
    title_before: str
    title: str
    before: dict[str, ItemView | None]
    after: dict[str, ItemView | None]


@dataclass(frozen=True)
class SyncStatus:
    """What the sync service last reported: its state (synced, syncing, offline, paused, error), local
    changes not yet in the cloud, a line of detail, and when it last heard from the cloud."""

    state: str
    pending: int
    detail: str = ""
    last_sync: datetime | None = None


@dataclass(frozen=True)
class OutboxEntry:
    """A local delta waiting to be pushed to the cloud."""

    seq: int
    list_id: str
    delta: bytes


def open_store(home: Home) -> Store:
    """Open the store of `home`, starting its server if needed and upgrading its schema.

    $SHOPLIST_DATABASE_URL, when set, names a PostgreSQL database to use instead of the home's own
    server (the home still holds the replica marker). Raises EnvironmentProblem subclasses.
    """
    url = os.environ.get(DATABASE_URL_ENV)
    if url:
        home.prepare()
    connection = _connect(url) if url else _connect_home(home)
    try:
        return Store.attach(connection, home)
    except BaseException:
        connection.close()
        raise


def _connect(conninfo: str) -> Connection:
    try:
        return psycopg.connect(conninfo, autocommit=True)
    except psycopg.OperationalError as error:
        raise EnvironmentProblem(f"cannot reach the store's PostgreSQL: {_first_line(error)}") from None


def _connect_home(home: Home) -> Connection:
    """Connect to the home's server; start it first when it does not answer."""
    address = postgres_server.server_address(home)
    if address is not None and (address.socket_dir / SOCKET_NAME).exists():
        try:
            return psycopg.connect(address.conninfo(), autocommit=True)
        except psycopg.OperationalError:
            pass  # a stale socket left by a killed server: start a new one
    started = postgres_server.start(home)
    address = postgres_server.server_address(home)
    assert address is not None, "a started store has a password"
    try:
        return psycopg.connect(address.conninfo(), autocommit=True)
    except psycopg.OperationalError as error:
        if "password authentication failed" in str(error):
            raise EnvironmentProblem(
                f"the password in this home's keychain does not open the store in {home.data_dir}"
                " (was the home copied from another computer?); the store is left as it is"
            ) from None
        raise EnvironmentProblem(
            f"the store's server (pid {started.pid}) does not answer: {_first_line(error)};"
            " `shoplist store stop` and try again"
        ) from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class Store:
    """One connection to the local store, writing as this home's replica. Not shared between threads:
    each thread or process opens its own; PostgreSQL's row locks order their writes."""

    def __init__(self, connection: Connection, replica_id: str) -> None:
        self._connection = connection
        self.replica_id = replica_id
        self._listening = False

    @classmethod
    def attach(cls, connection: Connection, home: Home) -> Store:
        """Return a store over `connection` (autocommit), upgrading the schema and settling the replica
        id of `home` on the way."""
        meta = _read_meta(connection)
        if int(meta.get("schema_version", 0)) != schema.CURRENT_VERSION:
            schema.migrate(connection)
            meta = _read_meta(connection)
        fingerprint = identity.home_fingerprint(home)
        replica_id = identity.kept_replica_id(meta["replica_id"], meta["home_fingerprint"], fingerprint)
        if replica_id is None:
            replica_id = _take_fresh_replica_id(connection, fingerprint)
        return cls(connection, replica_id)

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ----- reading -------------------------------------------------------------------------------

    def lists(self) -> list[ListSummary]:
        """Return every list, ordered by title (ignoring case) then id; decodes nothing."""
        rows = self._connection.execute(
            "SELECT id, title, item_count, shared FROM lists ORDER BY lower(title), title, id"
        )
        return [ListSummary(*row) for row in rows]

    def find(self, reference: str) -> ListSummary:
        """Return the list `reference` names: an id, a title, or an id prefix.

        Raises ListNotFoundError or AmbiguousListError (whose message lists the candidates).
        """
        return resolve_reference(reference, self.lists())

    def load(self, list_id: str) -> ShoppingList:
        """Return the whole list. Raises ListNotFoundError, CorruptStateError."""
        # One statement reads the header and the items from one snapshot, so they always agree.
        row = self._connection.execute(
            "SELECT header, ARRAY(SELECT record FROM items WHERE list_id = lists.id)"
            " FROM lists WHERE id = %s",
            (list_id,),
        ).fetchone()
        if row is None:
            raise ListNotFoundError(f"no list with id {list_id}")
        return self._decode(list_id, row[0], row[1])

    def parts(self, list_id: str) -> tuple[bytes, list[tuple[str, bytes]]]:
        """Return the list's header and every item row as (key, record), from one snapshot, undecoded:
        for readers that keep what they decoded before and decode only the records that changed.
        Raises ListNotFoundError."""
        row = self._connection.execute(
            "SELECT header, ARRAY(SELECT key FROM items WHERE list_id = lists.id ORDER BY key),"
            " ARRAY(SELECT record FROM items WHERE list_id = lists.id ORDER BY key)"
            " FROM lists WHERE id = %s",
            (list_id,),
        ).fetchone()
        if row is None:
            raise ListNotFoundError(f"no list with id {list_id}")
        return bytes(row[0]), [(key, bytes(record)) for key, record in zip(row[1], row[2], strict=True)]

    def decode_parts(self, list_id: str, header: bytes, records: Sequence[bytes]) -> ShoppingList:
        """Return the (partial) list made of `header` and `records`, as `parts` returned them.
        Raises CorruptStateError."""
        return self._decode(list_id, header, records)

    def item(self, list_id: str, name: str) -> ItemView | None:
        """Return the present item called `name` (any case or spacing), or None; reads one item row.
        Raises ListNotFoundError, CorruptStateError, UsageError on a bad name."""
        row = self._connection.execute(
            "SELECT header, ARRAY(SELECT record FROM items WHERE list_id = lists.id AND key = %s)"
            " FROM lists WHERE id = %s",
            (_key(name), list_id),
        ).fetchone()
        if row is None:
            raise ListNotFoundError(f"no list with id {list_id}")
        return self._decode(list_id, row[0], row[1]).item(name)

    def view(self, list_id: str) -> ListView:
        """Return the list as a user sees it. Raises ListNotFoundError, CorruptStateError."""
        state = self.load(list_id)
        items = sorted(state.entries(), key=lambda item: (item.category.casefold(), item.name.casefold()))
        return ListView(list_id, state.title, items)

    def outbox(self, after: int = 0, limit: int = 1000) -> list[OutboxEntry]:
        """Return up to `limit` outbox entries with a sequence number above `after`, oldest first."""
        rows = self._connection.execute(
            "SELECT seq, list_id, delta FROM outbox WHERE seq > %s ORDER BY seq LIMIT %s", (after, limit)
        )
        return [OutboxEntry(seq, list_id, bytes(delta)) for seq, list_id, delta in rows]

    def acknowledge(self, seqs: Iterable[int]) -> None:
        """Drop the outbox entries with these sequence numbers: the cloud holds them durably. Lists sync
        independently, so acknowledgements need not come in sequence order."""
        self._connection.execute("DELETE FROM outbox WHERE seq = ANY(%s)", (list(seqs),))

    # ----- sync bookkeeping ----------------------------------------------------------------------

    def mark_shared(self, list_id: str) -> None:
        """Mark the list as shared (its code was given out, or it was joined by code)."""
        if (
            self._connection.execute(
                "UPDATE lists SET shared = true WHERE id = %s RETURNING id", (list_id,)
            ).fetchone()
            is None
        ):
            raise ListNotFoundError(f"no list with id {list_id}")
        self._connection.execute("SELECT pg_notify(%s, %s)", (CHANNEL, list_id))

    def claim_sync_service(self) -> bool:
        """Try to become this home's one sync service; True if claimed. The claim lasts as long as this
        connection, so a killed service releases it at once."""
        row = self._connection.execute("SELECT pg_try_advisory_lock(%s)", (SYNC_SERVICE_LOCK,)).fetchone()
        return bool(row and row[0])

    def sync_service_running(self) -> bool:
        """Return whether some process holds this home's sync service claim."""
        row = self._connection.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND ((classid::bigint << 32) | objid::bigint) = %s",
            (SYNC_SERVICE_LOCK,),
        ).fetchone()
        return bool(row and row[0])

    def record_sync_status(self, status: SyncStatus) -> None:
        """Store what the sync service reports, for windows and `shoplist status`, and notify them."""
        with self._connection.transaction():
            self._connection.execute(
                "INSERT INTO sync_status (state, pending, detail, last_sync) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (only_row) DO UPDATE SET state = excluded.state, pending = excluded.pending,"
                " detail = excluded.detail, last_sync = excluded.last_sync, updated_at = now()",
                (status.state, status.pending, status.detail, status.last_sync),
            )
            self._connection.execute("SELECT pg_notify(%s, %s)", (SYNC_CHANNEL, status.state))

    def request_sync(self) -> None:
        """Ask the running sync service to push and pull everything now (as its tray's *Sync now*)."""
        self._connection.execute("SELECT pg_notify(%s, %s)", (SYNC_CHANNEL, SYNC_REQUESTED))

    def outbox_size(self) -> int:
        """Return how many local edits wait to be pushed to the cloud."""
        row = self._connection.execute("SELECT count(*) FROM outbox").fetchone()
        return int(row[0]) if row else 0

    def sync_status(self) -> SyncStatus | None:
        """Return what the sync service last reported, or None if it never ran in this home."""
        row = self._connection.execute("SELECT state, pending, detail, last_sync FROM sync_status").fetchone()
        return SyncStatus(*row) if row else None

    # ----- local edits: each one transaction ---------------------------------------------------------

    def create(self, title: str) -> ListSummary:
        """Create an empty list called `title` and return it. Raises UsageError on a bad title."""
        state = ShoppingList(self.replica_id)
        delta = _checked(lambda: state.set_title(title))
        list_id = secrets.token_hex(16)
        with self._connection.transaction():
            self._connection.execute(
                "INSERT INTO lists (id, header, title, item_count) VALUES (%s, %s, %s, 0)",
                (list_id, state.header_bytes(), state.title),
            )
            self._append_to_outbox(list_id, delta)
        return ListSummary(list_id, state.title, 0)

    def add_item(
        self, list_id: str, name: str, needed: int = 1, acquired: int = 0, **details: str
    ) -> ItemView:
        """Add to the item's quantities (creating it) and return the item as it now is."""
        state = self._edit(list_id, [name], lambda state: state.add_item(name, needed, acquired, **details))
        return _present(state, name)

    def set_item(
        self, list_id: str, name: str, needed: int | None = None, acquired: int | None = None, **details: str
    ) -> ItemView:
        """Set the item's quantities and details (creating it) and return the item as it now is."""
        state = self._edit(list_id, [name], lambda state: state.set_item(name, needed, acquired, **details))
        return _present(state, name)

    def remove_item(self, list_id: str, name: str) -> None:
        """Remove the item. Raises ListNotFoundError if the list has no such item."""

        def remove(state: ShoppingList) -> ShoppingList:
            if state.item(name) is None:
                raise ListNotFoundError(f"the list {state.title!r} has no item called {name!r}")
            return state.remove_item(name)

        self._edit(list_id, [name], remove)

    def rename(self, list_id: str, title: str) -> ListSummary:
        """Give the list a new title and return it."""
        state = self._edit(list_id, [], lambda state: state.set_title(title))
        return ListSummary(list_id, state.title, self._item_count(list_id))

    def delete(self, list_id: str) -> None:
        """Forget the list on this replica, with its unsent outbox entries. Not replicated: other
        replicas keep their copies."""
        with self._connection.transaction():
            if (
                self._connection.execute(
                    "DELETE FROM lists WHERE id = %s RETURNING id", (list_id,)
                ).fetchone()
                is None
            ):
                raise ListNotFoundError(f"no list with id {list_id}")
            self._connection.execute("SELECT pg_notify(%s, %s)", (CHANNEL, list_id))

    def reshare(self, list_id: str, cloud_state: ShoppingList) -> tuple[ListSummary, ShoppingList]:
        """Give the list a new random id, as one transaction, and return the new list and the delta
        that clears the old one.

        The new list keeps the CRDT state, merged with `cloud_state` (the cloud's copy of the old id),
        is marked shared, and has that whole state in its outbox. The old list stays, emptied by a local
        edit (every item removed, the title kept) whose delta is in its outbox too, so former members see
        it empty once that reaches the cloud; the caller deletes it here once the cloud holds the clear.
        Raises ListNotFoundError.
        """
        new_id = secrets.token_hex(16)
        with self._connection.transaction():
            row = self._connection.execute(
                "SELECT header FROM lists WHERE id = %s FOR UPDATE", (list_id,)
            ).fetchone()
            if row is None:
                raise ListNotFoundError(f"no list with id {list_id}")
            records = self._connection.execute("SELECT record FROM items WHERE list_id = %s", (list_id,))
            state = self._decode(list_id, row[0], [record for (record,) in records])
            state.merge(cloud_state)
            self._connection.execute(
                "INSERT INTO lists (id, header, shared) VALUES (%s, %s, true)", (new_id, state.header_bytes())
            )
            self._write(new_id, state, state.item_keys(), len(state))
            self._append_to_outbox(new_id, state)
            keys = state.item_keys()
            clear = ShoppingList(self.replica_id)
            for item in state.entries():
                clear.merge(state.remove_item(item.name))
            self._write(list_id, state, keys, len(state))
            self._connection.execute("UPDATE lists SET shared = false WHERE id = %s", (list_id,))
            self._append_to_outbox(list_id, clear)
        return ListSummary(new_id, state.title, self._item_count(new_id), True), clear

    def merge_remote(self, list_id: str, state: ShoppingList) -> RemoteMerge:
        """Merge a state or delta that came from another replica (creating the list if new and the state
        shows a title or an item), writing only the items that changed, and return what changed.
        Nothing goes to the outbox: it is not a local edit."""
        return self._merge(list_id, state, local=False)

    def restore(self, list_id: str, state: ShoppingList) -> RemoteMerge:
        """Bring back a list this replica deleted (or merge into it, if present) from a state it held,
        as a local edit: the state goes to the outbox too, since the delete dropped unsent changes."""
        return self._merge(list_id, state, local=True)

    def _merge(self, list_id: str, state: ShoppingList, *, local: bool) -> RemoteMerge:
        with self._connection.transaction():
            row = self._connection.execute(
                "SELECT header FROM lists WHERE id = %s FOR UPDATE", (list_id,)
            ).fetchone()
            if row is None and not local and not state.title and not len(state):
                # Nothing to show (a list's clearing after a reshare, arriving after its delete here):
                # it creates no empty, untitled list.
                return RemoteMerge(False, "", "", {}, {})
            if row is None:
                local_state = ShoppingList(self.replica_id)
                self._connection.execute(
                    "INSERT INTO lists (id, header) VALUES (%s, %s)", (list_id, local_state.header_bytes())
                )
            else:
                records = self._connection.execute("SELECT record FROM items WHERE list_id = %s", (list_id,))
                local_state = self._decode(list_id, row[0], [record for (record,) in records])
            title_before = local_state.title
            before = local_state.copy()
            changed = local_state.merge_changes(state)
            # A state this replica already holds (a pull after an outage, say) changes nothing: no write,
            # no fsync, and no notification waking every window for nothing.
            wrote = row is None or bool(changed) or local_state.header_bytes() != bytes(row[0])
            if wrote:
                self._write(list_id, local_state, changed, len(local_state))
            if local:
                self._append_to_outbox(list_id, state)
            if wrote or local:
                self._connection.execute("SELECT pg_notify(%s, %s)", (CHANNEL, list_id))
        return RemoteMerge(
            created=row is None,
            title_before=title_before,
            title=local_state.title,
            before={key: before.item(key) for key in changed},
            after={key: local_state.item(key) for key in changed},
        )

    # ----- listening -------------------------------------------------------------------------------

    def listen(self) -> None:
        """Start receiving change notifications (call before reading, so no change slips between)."""
        if not self._listening:
            self._connection.execute(f"LISTEN {CHANNEL}")
            self._connection.execute(f"LISTEN {SYNC_CHANNEL}")
            self._listening = True

    def wait_for_change(self, timeout: float) -> set[str]:
        """Wait up to `timeout` seconds for committed changes; return the ids of the lists changed, plus
        SYNC_STATUS_CHANGED if the sync service reported and SYNC_REQUESTED if a window asked it to sync
        now (empty on timeout). Includes this connection's own writes."""
        self.listen()
        return {
            note.payload if note.channel == CHANNEL or note.payload == SYNC_REQUESTED else SYNC_STATUS_CHANGED
            for note in self._connection.notifies(timeout=timeout, stop_after=1)
        }

    # ----- internals -------------------------------------------------------------------------------

    def _item_count(self, list_id: str) -> int:
        row = self._connection.execute("SELECT item_count FROM lists WHERE id = %s", (list_id,)).fetchone()
        return int(row[0]) if row else 0

    def _edit(
        self, list_id: str, names: Iterable[str], change: Callable[[ShoppingList], ShoppingList]
    ) -> ShoppingList:
        """Run one local edit as one transaction and return the (partial) list after it: holding the
        header and the items named, which is all an edit of those items needs."""
        keys = sorted({_key(name) for name in names})
        with self._connection.transaction():
            row = self._connection.execute(
                "SELECT header, item_count FROM lists WHERE id = %s FOR UPDATE", (list_id,)
            ).fetchone()
            if row is None:
                raise ListNotFoundError(f"no list with id {list_id}")
            records = self._connection.execute(
                "SELECT record FROM items WHERE list_id = %s AND key = ANY(%s)", (list_id, keys)
            )
            state = self._decode(list_id, row[0], [record for (record,) in records])
            present_before = len(state)
            delta = _checked(lambda: change(state))
            if not delta.item_keys() <= set(keys):
                raise AssertionError(f"an edit of {keys} touched {sorted(delta.item_keys())}")
            # Every loaded row is written, not just the delta's item_keys(): removing an item with no
            # quantities yields a delta of context alone, yet its row must go.
            self._write(list_id, state, keys, row[1] + len(state) - present_before)
            self._append_to_outbox(list_id, delta)
        return state

    def _write(self, list_id: str, state: ShoppingList, keys: Iterable[str], item_count: int) -> None:
        """Write the header and the item rows `keys` of `state` (deleting rows of items that are gone)."""
        self._connection.execute(
            "UPDATE lists SET header = %s, title = %s, item_count = %s WHERE id = %s",
            (state.header_bytes(), state.title, item_count, list_id),
        )
        upserts, deletions = [], []
        for key in keys:
            record = state.item_bytes(key)
            if record is None:
                deletions.append(key)
            else:
                upserts.append((list_id, key, record))
        with self._connection.cursor() as cursor:
            if upserts:
                cursor.executemany(
                    "INSERT INTO items (list_id, key, record) VALUES (%s, %s, %s)"
                    " ON CONFLICT (list_id, key) DO UPDATE SET record = excluded.record",
                    upserts,
                )
            if deletions:
                cursor.execute("DELETE FROM items WHERE list_id = %s AND key = ANY(%s)", (list_id, deletions))

    def _append_to_outbox(self, list_id: str, delta: ShoppingList) -> None:
        """Queue the delta for the cloud and wake listeners; both take effect at commit."""
        if delta.is_empty():
            return
        self._connection.execute(
            "INSERT INTO outbox (list_id, delta) VALUES (%s, %s)", (list_id, delta.to_bytes())
        )
        self._connection.execute("SELECT pg_notify(%s, %s)", (CHANNEL, list_id))

    def _decode(self, list_id: str, header: bytes, records: Sequence[bytes]) -> ShoppingList:
        try:
            return ShoppingList.from_parts(
                bytes(header), (bytes(record) for record in records), self.replica_id
            )
        except ValueError as error:
            raise CorruptStateError(f"the stored state of list {list_id} is damaged: {error}") from None


def resolve_reference(reference: str, lists: Sequence[ListSummary]) -> ListSummary:
    """Return the one list of `lists` that `reference` names: an exact id first, else every list whose
    title matches (ignoring case and spacing) or whose id starts with it must be one and the same.

    Raises ListNotFoundError or AmbiguousListError (naming the candidates).
    """
    for summary in lists:
        if summary.id == reference:
            return summary
    wanted = " ".join(reference.split()).casefold()
    prefix = reference.strip().lower()
    candidates = [
        summary
        for summary in lists
        if summary.title.casefold() == wanted or (prefix and summary.id.startswith(prefix))
    ]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise ListNotFoundError(f"no list matches {reference!r}")
    named = ", ".join(f"{summary.id[:12]} {summary.title!r}" for summary in candidates)
    raise AmbiguousListError(f"{reference!r} matches {len(candidates)} lists: {named}; give more of the id")


def _read_meta(connection: Connection) -> dict[str, str]:
    try:
        rows = connection.execute("SELECT key, value FROM meta").fetchall()
    except psycopg.errors.UndefinedTable:
        return {}
    return dict(rows)


def _take_fresh_replica_id(connection: Connection, fingerprint: str) -> str:
    """Record a new replica id for this copy of the home, unless a concurrent process just did."""
    with connection.transaction():
        rows = connection.execute(
            "SELECT key, value FROM meta WHERE key IN ('replica_id', 'home_fingerprint') FOR UPDATE"
        ).fetchall()
        meta: dict[str, str] = dict(rows)
        kept = identity.kept_replica_id(meta["replica_id"], meta["home_fingerprint"], fingerprint)
        if kept is not None:
            return kept
        replica_id = new_replica_id()
        connection.execute(
            "UPDATE meta SET value = CASE key WHEN 'replica_id' THEN %s ELSE %s END"
            " WHERE key IN ('replica_id', 'home_fingerprint')",
            (replica_id, fingerprint),
        )
        return replica_id


def _checked(action: Callable[[], Any]) -> Any:
    """Run `action`, turning the ValueError the CRDT raises on bad input into a UsageError."""
    try:
        return action()
    except ValueError as error:
        raise UsageError(str(error)) from None


def _key(name: str) -> str:
    try:
        return item_key(name)
    except ValueError as error:
        raise UsageError(str(error)) from None


def _present(state: ShoppingList, name: str) -> ItemView:
    item = state.item(name)
    if item is None:
        raise AssertionError(f"item {name!r} is missing right after it was written")
    return item
