"""Processes writing to one list at once lose nothing: PostgreSQL's row lock orders the edits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sync_service.store import Store
from tests.sync_service.conftest import REPO, cli_environment

ADDS_PER_PROCESS = 300


def test_two_processes_adding_300_items_each_at_once_lose_nothing(
    store: Store, postgres_database: str, tmp_path: Path
) -> None:
    list_id = store.create("Groceries").id
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.sync_service.concurrent_adder",
                postgres_database,
                str(tmp_path / "home"),
                list_id,
                prefix,
                str(ADDS_PER_PROCESS),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=cli_environment(None),
        )
        for prefix in ("first", "second")
    ]
    for worker in workers:
        assert worker.stdout is not None and worker.stdout.readline() == "ready\n"
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    for worker in workers:
        output, _ = worker.communicate(timeout=240)
        assert (worker.returncode, output) == (0, "done\n")

    items = store.load(list_id).items()
    expected = {f"{prefix} {number}" for prefix in ("first", "second") for number in range(ADDS_PER_PROCESS)}
    assert set(items) == expected | {"Eggs"}
    assert items["Eggs"] == (2 * ADDS_PER_PROCESS, 0)
    assert store.lists()[0].items == 2 * ADDS_PER_PROCESS + 1
    assert len(store.outbox(limit=10_000)) == 1 + 4 * ADDS_PER_PROCESS
