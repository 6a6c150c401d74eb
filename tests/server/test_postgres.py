"""The node's database: the PostgreSQL system account is created once when several nodes start at once,
and every connection must prove the node's generated password."""

from __future__ import annotations

import stat
import subprocess
import threading
import time
from pathlib import Path

import psycopg
import pytest

from server import postgres
from server.postgres import SystemUserError, ensure_user_once


class FakeAccounts:
    """Stands in for /etc/passwd and `useradd`: creating takes a while, and creating an account that
    appeared meanwhile fails the way `useradd` does (exit 9, "already exists")."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.creations = 0
        self._guard = threading.Lock()

    def ensure(self, name: str) -> None:
        if name in self.names:
            return
        time.sleep(0.05)  # widen the window between the lookup and useradd, as a loaded machine does
        with self._guard:
            if name in self.names:
                raise subprocess.CalledProcessError(9, ["useradd", name], stderr="user already exists")
            self.names.add(name)
            self.creations += 1


def test_nodes_starting_together_create_the_account_once_and_none_fails(tmp_path: Path) -> None:
    accounts = FakeAccounts()
    failures: list[BaseException] = []

    def start_node() -> None:
        try:
            ensure_user_once("embedded_postgres", accounts.ensure, tmp_path / "user.lock")
        except BaseException as problem:
            failures.append(problem)

    nodes = [threading.Thread(target=start_node) for _ in range(5)]
    for node in nodes:
        node.start()
    for node in nodes:
        node.join()
    assert failures == []
    assert accounts.creations == 1
    assert accounts.names == {"embedded_postgres"}


def test_an_account_that_cannot_be_created_is_reported_as_the_environment_s_fault(tmp_path: Path) -> None:
    def refuse(name: str) -> None:
        raise subprocess.CalledProcessError(1, ["useradd", name], stderr="useradd: cannot lock /etc/passwd")

    with pytest.raises(SystemUserError, match="cannot lock /etc/passwd"):
        ensure_user_once("embedded_postgres", refuse, tmp_path / "user.lock")


def test_the_node_database_asks_every_connection_for_its_generated_password(tmp_path: Path) -> None:
    data_dir = tmp_path / "node" / "postgres"
    database = postgres.start(data_dir)
    try:
        password_file = postgres.password_file(data_dir)
        assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
        assert password_file.read_text().strip() == database.password
        assert "trust" not in (data_dir / "pg_hba.conf").read_text().split()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(database.server.get_uri()).close()  # embedded-postgres's own, password-less
        wrong = database.get_uri().replace(database.password, "guessed")
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(wrong).close()
        with psycopg.connect(database.get_uri()) as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
        assert postgres.uri_of(data_dir) == database.get_uri()
        database.server.cleanup()  # stopped, as when the node exits
        again = postgres.start(data_dir)
        assert again.password == database.password
        with psycopg.connect(again.get_uri()) as connection:
            assert connection.execute("SHOW unix_socket_permissions").fetchone() == ("0700",)
        again.server.cleanup()
        password_file.unlink()
        with pytest.raises(postgres.DatabasePasswordError, match="cannot be opened"):
            postgres.start(data_dir)
    finally:
        postgres.stop_leftover(data_dir)
