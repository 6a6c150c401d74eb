"""`shoplist --self-test`: start the bundled PostgreSQL in a temporary home, write a list through the real
store and read it back, stop the server and remove the home, printing each check as it passes.

Installers and CI run it from the installed files to prove that the bundle holds a working PostgreSQL (its
programs, shared libraries and share files) and that the store runs on it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from sync_service.errors import ShoplistError
from sync_service.home import DATABASE_URL_ENV, Home
from sync_service.keychain_core import SETTING_ENV

SELF_TEST_TITLE = "Self-test"
# (name, needed, acquired): what is written, and what must be read back from a fresh connection.
SELF_TEST_ITEMS = (("Milk", 2, 0), ("Eggs", 6, 1))
REQUIRED_PROGRAMS = ("postgres", "initdb", "pg_ctl")


class SelfTestFailure(Exception):
    """One check did not hold; the message says which and what was seen."""


def run(output: TextIO = sys.stdout) -> int:
    """Run every check, printing one line each; return 0 if all passed, else 1 after a `FAIL:` line.

    The temporary home is removed (its server stopped first) whether or not the checks pass.
    """
    say = _printer(output)
    if os.name == "nt":
        say("FAIL: the local store's server lifecycle runs on Linux and macOS only (see docs/local-store.md)")
        return 1
    home = Home(Path(tempfile.mkdtemp(prefix="shoplist-self-test-")))
    say(f"ok: temporary home {home.path}")
    try:
        with _without_database_override():
            _check_programs(say)
            _check_store(home, say)
    except (SelfTestFailure, ShoplistError, OSError) as error:
        say(f"FAIL: {error}")
        _clean_up(home, say)
        return 1
    except Exception as error:  # the driver's own errors: still one line, still cleaned up
        say(f"FAIL: {type(error).__name__}: {str(error).strip().splitlines()[0] if str(error) else ''}")
        _clean_up(home, say)
        return 1
    if not _clean_up(home, say):
        say("FAIL: the temporary home could not be removed")
        return 1
    say("self-test passed")
    return 0


def _printer(output: TextIO) -> Callable[[str], None]:
    def say(line: str) -> None:
        print(line, file=output, flush=True)

    return say


@contextlib.contextmanager
def _without_database_override() -> Iterator[None]:
    """Ignore $SHOPLIST_DATABASE_URL for the test: it must exercise the bundled server, not another. The
    temporary home keeps its password in its own file, not the desktop's keyring, which would keep it
    after the home is gone."""
    saved = os.environ.pop(DATABASE_URL_ENV, None)
    saved_keyring = os.environ.get(SETTING_ENV)
    os.environ[SETTING_ENV] = "file"
    try:
        yield
    finally:
        if saved is not None:
            os.environ[DATABASE_URL_ENV] = saved
        if saved_keyring is None:
            os.environ.pop(SETTING_ENV, None)
        else:
            os.environ[SETTING_ENV] = saved_keyring


def _check_programs(say: Callable[[str], None]) -> None:
    """The bundled PostgreSQL programs exist, are executable and load their shared libraries."""
    from sync_service.postgres_server import bin_dir

    folder = bin_dir()
    missing = [name for name in REQUIRED_PROGRAMS if not os.access(folder / name, os.X_OK)]
    if missing:
        names = ", ".join(missing)
        raise SelfTestFailure(f"PostgreSQL programs missing or not executable in {folder}: {names}")
    say(f"ok: PostgreSQL programs found in {folder}")
    for name in ("postgres", "initdb"):
        version = _version_of(folder / name)
        say(f"ok: {name} runs: {version}")


def _version_of(program: Path) -> str:
    """Return `program --version`'s output, proving the binary and its libraries load."""
    try:
        result = subprocess.run(
            [str(program), "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SelfTestFailure(f"{program} does not run: {error}") from None
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise SelfTestFailure(f"{program} --version failed: {detail[-1] if detail else result.returncode}")
    return result.stdout.strip()


def _check_store(home: Home, say: Callable[[str], None]) -> None:
    """Start the server in `home`, write a list, read it back on a new connection, stop the server."""
    from sync_service import postgres_server
    from sync_service.store import open_store

    started = postgres_server.start(home)
    if not started.running:
        raise SelfTestFailure("PostgreSQL did not report running after its start")
    say(f"ok: PostgreSQL started (pid {started.pid}, socket in {home.socket_dir})")

    with open_store(home) as store:
        created = store.create(SELF_TEST_TITLE)
        for name, needed, acquired in SELF_TEST_ITEMS:
            store.add_item(created.id, name, needed, acquired)
    say(f"ok: wrote list {created.title!r} ({created.id}) with {len(SELF_TEST_ITEMS)} items")

    with open_store(home) as store:
        view = store.view(store.find(SELF_TEST_TITLE).id)
        read = {item.name: (item.needed, item.acquired) for item in view.items}
        pending = len(store.outbox())
    expected = {name: (needed, acquired) for name, needed, acquired in SELF_TEST_ITEMS}
    if view.id != created.id or read != expected:
        raise SelfTestFailure(f"read back {view.id} {read}, expected {created.id} {expected}")
    say(f"ok: read the list back on a new connection: {_describe(read)}")
    # One outbox entry for the title and one per item: the edits are waiting for the sync service.
    if pending != 1 + len(SELF_TEST_ITEMS):
        raise SelfTestFailure(f"the outbox holds {pending} entries, expected {1 + len(SELF_TEST_ITEMS)}")
    say(f"ok: the outbox holds the {pending} edits for the sync service")

    if not postgres_server.stop(home):
        raise SelfTestFailure("PostgreSQL was not running when the test stopped it")
    if postgres_server.status(home).running:
        raise SelfTestFailure("PostgreSQL still runs after its stop")
    say("ok: PostgreSQL stopped")


def _describe(items: dict[str, tuple[int, int]]) -> str:
    return ", ".join(f"{name} {needed}/{acquired}" for name, (needed, acquired) in sorted(items.items()))


def _clean_up(home: Home, say: Callable[[str], None]) -> bool:
    """Stop a server the checks left running and remove the temporary home; return whether it is gone."""
    from sync_service import postgres_server

    with contextlib.suppress(ShoplistError, OSError):
        if postgres_server.status(home).running:
            postgres_server.stop(home)
    shutil.rmtree(home.path, ignore_errors=True)
    if home.path.exists():
        return False
    say(f"ok: removed {home.path}")
    return True
