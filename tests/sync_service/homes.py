"""Homes for end-to-end tests: one person's computer (a home, its database, the cloud it is told about)
driven through the real `shoplist` CLI and `shoplist-sync` processes."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from sync_service.home import Home
from sync_service.store import Store
from tests.sync_service.conftest import REPO, Result, cli_environment

DEADLINE_SECONDS = 60.0


@dataclass
class HomeUnderTest:
    """One person's computer: a home, its database, and the cloud it is told about."""

    path: Path
    database: str
    proxies: list[str]

    @property
    def sync_log(self) -> Path:
        """Return where this home's sync service writes its log."""
        return self.path.parent / f"{self.path.name}-sync.log"

    def environment(self) -> dict[str, str]:
        environment = cli_environment(self.database)
        environment["SHOPLIST_PROXIES"] = ",".join(self.proxies)
        return environment

    def shoplist(self, *arguments: str) -> Result:
        completed = subprocess.run(
            [sys.executable, "-m", "sync_service.cli", "--home", str(self.path), *arguments],
            capture_output=True,
            text=True,
            cwd=REPO,
            env=self.environment(),
            timeout=120,
            check=False,
        )
        return Result(completed.returncode, completed.stdout, completed.stderr)

    def start_sync_service(
        self, *, headless: bool = True, environment: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start `shoplist-sync` for this home (in `environment`, default: the home's own)."""
        command = [sys.executable, "-m", "sync_service.tray_service", "--verbose", "--home", str(self.path)]
        if headless:
            command.append("--headless")
        log = self.sync_log.open("ab")
        return subprocess.Popen(
            command, cwd=REPO, env=environment or self.environment(), stdout=log, stderr=log
        )

    def store(self) -> Store:
        home = Home(self.path)
        home.prepare()
        return Store.attach(psycopg.connect(self.database, autocommit=True), home)

    def service_state(self, store: Store) -> str:
        """Return the state the home's sync service last recorded ("never reported" before the first)."""
        status = store.sync_status()
        return status.state if status is not None else "never reported"


def eventually(check: Callable[[], bool], what: str) -> None:
    """Wait until `check()` holds; fail saying `what` did not happen."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not check():
        assert time.monotonic() < deadline, f"{what} did not happen within {DEADLINE_SECONDS:g} s"
        time.sleep(0.05)


def shared_list(owner: HomeUnderTest, other: HomeUnderTest, title: str) -> str:
    """Create `title` in `owner`, sync it, and join it in `other` with its share code; return its id."""
    list_id: str = owner.shoplist("--json", "new", title).json()["id"]
    assert owner.shoplist("sync").code == 0
    code = owner.shoplist("--json", "share", title).json()["code"]
    assert other.shoplist("--json", "join", code).json()["id"] == list_id
    return list_id
