"""Versioned migrations: a fresh database gets the current schema, an old one is upgraded in place."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from crdt import ShoppingList
from sync_service import schema
from sync_service.errors import SchemaTooNewError
from sync_service.home import Home
from sync_service.store import Store


def make_version_1_store(connection: psycopg.Connection[tuple[object, ...]]) -> dict[str, ShoppingList]:
    """Build a store as release 1 wrote it: a header and item rows, no title or item count columns."""
    schema.migrate(connection, target=1)
    groceries, party = ShoppingList("old-replica"), ShoppingList("old-replica")
    groceries.set_title("Groceries")
    groceries.add_item("Milk", 2)
    groceries.add_item("Eggs", 6, 1)
    party.set_title("Party")
    party.add_item("Cake", 1)
    lists = {"1" * 32: groceries, "2" * 32: party}
    for list_id, state in lists.items():
        connection.execute("INSERT INTO lists (id, header) VALUES (%s, %s)", (list_id, state.header_bytes()))
        for key in state.item_keys():
            connection.execute(
                "INSERT INTO items (list_id, key, record) VALUES (%s, %s, %s)",
                (list_id, key, state.item_bytes(key)),
            )
    return lists


def test_a_fresh_database_gets_the_current_schema(postgres_database: str) -> None:
    with psycopg.connect(postgres_database, autocommit=True) as connection:
        assert schema.migrate(connection) == 0
        assert schema.stored_version(connection) == schema.CURRENT_VERSION


def test_migrating_an_up_to_date_database_changes_nothing(postgres_database: str) -> None:
    with psycopg.connect(postgres_database, autocommit=True) as connection:
        schema.migrate(connection)
        assert schema.migrate(connection) == schema.CURRENT_VERSION
        assert schema.stored_version(connection) == schema.CURRENT_VERSION


def test_a_version_1_store_is_upgraded_in_place_keeping_every_list(
    postgres_database: str, tmp_path: Path
) -> None:
    home = Home(tmp_path / "home")
    home.prepare()
    with psycopg.connect(postgres_database, autocommit=True) as connection:
        old = make_version_1_store(connection)
        assert schema.stored_version(connection) == 1
        store = Store.attach(connection, home)
        assert schema.stored_version(connection) == schema.CURRENT_VERSION
        assert [(summary.title, summary.items) for summary in store.lists()] == [
            ("Groceries", 2),
            ("Party", 1),
        ]
        assert store.load("1" * 32) == old["1" * 32]
        store.add_item("1" * 32, "Milk", 1)
        assert store.load("1" * 32).items() == {"Milk": (3, 0), "Eggs": (6, 1)}


def test_a_store_written_by_a_newer_release_is_refused(postgres_database: str) -> None:
    with psycopg.connect(postgres_database, autocommit=True) as connection:
        schema.migrate(connection)
        connection.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
        with pytest.raises(SchemaTooNewError, match="upgrade Shoplist"):
            schema.migrate(connection)
