"""A worker for the concurrency test: opens the store, waits for "go" on stdin, then adds its items."""

from __future__ import annotations

import sys
from pathlib import Path

import psycopg

from sync_service.home import Home
from sync_service.store import Store


def main(database_url: str, home: str, list_id: str, prefix: str, count: int) -> None:
    """Add `count` items of its own and `count` single Eggs to the shared list."""
    with Store.attach(psycopg.connect(database_url, autocommit=True), Home(Path(home))) as store:
        print("ready", flush=True)
        sys.stdin.readline()
        for number in range(count):
            store.add_item(list_id, f"{prefix} {number}")
            store.add_item(list_id, "Eggs", 1)
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
