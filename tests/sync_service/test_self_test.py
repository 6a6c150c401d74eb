"""`shoplist --self-test`: a real PostgreSQL in a temporary home, each check printed, the home removed."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from sync_service import postgres_server, self_test
from sync_service.errors import ServerStartError
from sync_service.home import Home
from sync_service.store import Store
from tests.sync_service.conftest import REPO, cli_environment


def _temporary_home(output: str) -> Path:
    found = re.search(r"^ok: temporary home (.+)$", output, re.MULTILINE)
    assert found, output
    return Path(found.group(1))


def _exits_within(pid: int, seconds: float) -> bool:
    """Return whether process `pid` is gone (or a zombie, which serves nothing) within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def test_self_test_passes_without_a_runtime_dir_and_ignores_a_database_override() -> None:
    environment = cli_environment("postgresql://nowhere.invalid/none")
    environment.pop("XDG_RUNTIME_DIR", None)
    completed = subprocess.run(
        [sys.executable, "-m", "sync_service.cli", "--self-test"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=environment,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[-1] == "self-test passed"
    assert all(line.startswith("ok: ") for line in lines[:-1])
    for check in (
        "postgres runs: postgres (PostgreSQL)",
        "PostgreSQL started",
        "wrote list 'Self-test'",
        "read the list back on a new connection: Eggs 6/1, Milk 2/0",
        "PostgreSQL stopped",
    ):
        assert check in completed.stdout
    assert not _temporary_home(completed.stdout).exists()


def test_self_test_takes_no_command() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "sync_service.cli", "--self-test", "lists"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=cli_environment(None),
        timeout=60,
        check=False,
    )
    assert completed.returncode == 2
    assert "--self-test takes no command" in completed.stderr


def test_missing_postgres_programs_fail_in_one_line_and_leave_no_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(postgres_server, "bin_dir", lambda: tmp_path)
    output = io.StringIO()
    assert self_test.run(output) == 1
    failures = [line for line in output.getvalue().splitlines() if line.startswith("FAIL: ")]
    assert failures == [
        f"FAIL: PostgreSQL programs missing or not executable in {tmp_path}: postgres, initdb, pg_ctl"
    ]
    assert not _temporary_home(output.getvalue()).exists()


def test_a_server_that_will_not_start_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(home: object) -> object:
        raise ServerStartError("PostgreSQL failed to start: could not bind (log: server.log)")

    monkeypatch.setattr(postgres_server, "start", refuse)
    output = io.StringIO()
    assert self_test.run(output) == 1
    text = output.getvalue()
    assert "FAIL: PostgreSQL failed to start: could not bind (log: server.log)" in text
    assert not _temporary_home(text).exists()


def test_a_failure_after_the_start_still_stops_the_server_and_removes_the_home(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[postgres_server.ServerStatus] = []
    real_start = postgres_server.start

    def start_and_remember(home: Home) -> postgres_server.ServerStatus:
        started.append(real_start(home))
        return started[-1]

    def wrong_view(self: Store, list_id: str) -> object:
        raise OSError("the read failed")

    monkeypatch.setattr(postgres_server, "start", start_and_remember)
    monkeypatch.setattr(Store, "view", wrong_view)
    output = io.StringIO()
    assert self_test.run(output) == 1
    text = output.getvalue()
    assert "ok: PostgreSQL started" in text
    assert "FAIL: the read failed" in text
    (server,) = started
    assert server.pid is not None and _exits_within(server.pid, seconds=30)
    assert not _temporary_home(text).exists()
