"""Creating the PostgreSQL system account when several nodes start at once: one creation, no failures."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest

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
