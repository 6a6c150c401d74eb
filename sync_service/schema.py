"""The local store's tables and their numbered migrations, which upgrade an old home in place."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from sync_service.errors import SchemaTooNewError

Connection = psycopg.Connection[Any]

# Any constant works; it keeps two processes from migrating one database at once.
MIGRATION_LOCK = 0x5A0B_5715

META_TABLE = "CREATE TABLE IF NOT EXISTS meta (key text PRIMARY KEY, value text NOT NULL)"

VERSION_1 = """
CREATE TABLE lists (
    id text PRIMARY KEY,
    header bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE items (
    list_id text NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    key text NOT NULL,
    record bytea NOT NULL,
    PRIMARY KEY (list_id, key)
);
CREATE TABLE outbox (
    seq bigserial PRIMARY KEY,
    list_id text NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    delta bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_by_list ON outbox (list_id, seq);
INSERT INTO meta (key, value) VALUES ('replica_id', ''), ('home_fingerprint', '')
"""

VERSION_2 = """
ALTER TABLE lists
    ADD COLUMN title text NOT NULL DEFAULT '',
    ADD COLUMN item_count integer NOT NULL DEFAULT 0
"""

VERSION_3 = """
ALTER TABLE lists ADD COLUMN shared boolean NOT NULL DEFAULT false;
CREATE TABLE sync_status (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    state text NOT NULL,
    pending integer NOT NULL,
    detail text NOT NULL DEFAULT '',
    last_sync timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    """One step: the SQL to run, then an optional data conversion in Python."""

    version: int
    purpose: str
    sql: str
    convert: Callable[[Connection], None] | None = None


def _fill_list_summaries(connection: Connection) -> None:
    """Decode every list once to fill the title and item count that `lists` reads without decoding."""
    from crdt import ShoppingList

    rows = connection.execute("SELECT id, header FROM lists").fetchall()
    for list_id, header in rows:
        records = connection.execute("SELECT record FROM items WHERE list_id = %s", (list_id,)).fetchall()
        try:
            state = ShoppingList.from_parts(bytes(header), [bytes(record) for (record,) in records])
        except ValueError:
            continue  # a damaged list keeps the defaults; reading it reports the damage
        connection.execute(
            "UPDATE lists SET title = %s, item_count = %s WHERE id = %s", (state.title, len(state), list_id)
        )


MIGRATIONS = (
    Migration(1, "lists as a header plus one row per item, the outbox, and meta", VERSION_1),
    Migration(
        2, "title and item count on each list, so `lists` decodes nothing", VERSION_2, _fill_list_summaries
    ),
    Migration(3, "the shared mark on lists, and the sync service's status for every window", VERSION_3),
)
CURRENT_VERSION = MIGRATIONS[-1].version


def stored_version(connection: Connection) -> int:
    """Return the schema version the database holds (0 for an empty database)."""
    if not _has_meta(connection):
        return 0
    row = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def migrate(connection: Connection, target: int = CURRENT_VERSION) -> int:
    """Bring the schema up to `target` and return the version found before.

    Raises SchemaTooNewError if the database was written by a newer release. `connection` must be in
    autocommit mode; every step commits together with the version it reaches.
    """
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        connection.execute(META_TABLE)
        found = stored_version(connection)
    if found > CURRENT_VERSION:
        raise SchemaTooNewError(
            f"this store has schema version {found}, newer than this Shoplist knows ({CURRENT_VERSION});"
            " upgrade Shoplist"
        )
    for step in MIGRATIONS:
        if step.version <= target:
            _apply(connection, step)
    return found


def _apply(connection: Connection, step: Migration) -> None:
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        if stored_version(connection) >= step.version:
            return  # another process got here first
        connection.execute(step.sql.encode())
        if step.convert is not None:
            step.convert(connection)
        connection.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', %s)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(step.version),),
        )


def _has_meta(connection: Connection) -> bool:
    row = connection.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()
    return bool(row and row[0])
