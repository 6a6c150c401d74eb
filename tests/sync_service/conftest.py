"""Fixtures for the local store and sync: fresh databases, homes with their own server, the CLI as a
process, a real local cloud, and sync services started by a test."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from sync_service import postgres_server
from sync_service.home import DATABASE_URL_ENV, Home
from sync_service.store import Store
from tests.cloud import RunningCluster, running_cluster

if TYPE_CHECKING:
    from tests.sync_service.homes import HomeUnderTest

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Result:
    """What one CLI run left behind."""

    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        assert self.code == 0, self.stderr
        return json.loads(self.stdout)


Shoplist = Callable[..., Result]


def cli_environment(database_url: str | None) -> dict[str, str]:
    """The environment of a CLI subprocess: ours minus any Shoplist settings, plus the database URL."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("SHOPLIST_")}
    if database_url is not None:
        environment[DATABASE_URL_ENV] = database_url
    environment["SHOPLIST_CLUSTER_FILE"] = os.devnull  # never find a cluster running on this machine
    environment["SHOPLIST_KEYRING"] = "file"  # never the desktop's keyring
    return environment


def run_shoplist(home: Path, *arguments: str, database_url: str | None = None) -> Result:
    """Run `shoplist --home HOME ARGUMENTS...` as a real process."""
    completed = subprocess.run(
        [sys.executable, "-m", "sync_service.cli", "--home", str(home), *arguments],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=cli_environment(database_url),
        timeout=120,
        check=False,
    )
    return Result(completed.returncode, completed.stdout, completed.stderr)


@pytest.fixture
def store(postgres_database: str, tmp_path: Path) -> Iterator[Store]:
    """A store on a fresh database of the session's server, for the home `tmp_path / "home"`."""
    home = Home(tmp_path / "home")
    home.prepare()
    with Store.attach(psycopg.connect(postgres_database, autocommit=True), home) as opened:
        yield opened


@pytest.fixture
def shoplist(postgres_database: str, tmp_path: Path) -> Shoplist:
    """Run the CLI against a fresh database of the session's server (no server start per test)."""
    home = tmp_path / "home"

    def run(*arguments: str) -> Result:
        return run_shoplist(home, *arguments, database_url=postgres_database)

    return run


@pytest.fixture
def own_home(tmp_path: Path) -> Iterator[Path]:
    """A home whose store runs its own PostgreSQL server, stopped after the test."""
    path = tmp_path / "home"
    yield path
    stop_and_tidy(Home(path))


def stop_and_tidy(home: Home) -> None:
    """Stop the home's server and remove its socket directory if it lies outside the home."""
    if home.data_dir.is_dir():
        postgres_server.stop(home)
    if home.path not in home.socket_dir.parents:
        shutil.rmtree(home.socket_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    """A real `shoplist-server cluster` (3 nodes, 2 proxies) shared by one test module."""
    with running_cluster(tmp_path_factory.mktemp("cloud")) as cluster:
        yield cluster


@pytest.fixture
def make_home(
    database_factory: Callable[[], str], tmp_path: Path, cloud: RunningCluster
) -> Callable[[str], HomeUnderTest]:
    """Make homes named by the test, each on a fresh database, told about `cloud`."""
    from tests.sync_service.homes import HomeUnderTest

    def make(name: str) -> HomeUnderTest:
        return HomeUnderTest(tmp_path / name, database_factory(), list(cloud.proxies))

    return make


@pytest.fixture
def services() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Sync service processes started by a test; killed at its end."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(30)
