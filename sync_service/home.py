"""Where a local replica lives: the home directory and the files and folders the store keeps in it."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sync_service.errors import HomeNotWritableError

HOME_ENV = "SHOPLIST_HOME"
DATABASE_URL_ENV = "SHOPLIST_DATABASE_URL"
APP_NAME = "shoplist"
SOCKET_NAME = ".s.PGSQL.5432"
# A Unix socket path must fit sockaddr_un.sun_path: 108 bytes on Linux, 104 on macOS, counting the NUL.
SOCKET_PATH_LIMIT = 103


@dataclass(frozen=True)
class Home:
    """One local replica's directory. Nothing here touches the disk until `prepare`."""

    path: Path

    @property
    def data_dir(self) -> Path:
        """The PostgreSQL data directory (owned by the server's system user)."""
        return self.path / "postgres"

    @property
    def log_file(self) -> Path:
        """The server's log, inside the data directory so the server's user can always write it."""
        return self.data_dir / "server.log"

    @property
    def secret_file(self) -> Path:
        """Where older releases kept the database password; it moves into the keychain on first open."""
        return self.path / "store-password"

    @property
    def lock_file(self) -> Path:
        """Held while a process starts or stops the server: one server per home."""
        return self.path / "store.lock"

    @property
    def marker_file(self) -> Path:
        """Never rewritten after creation; its inode and change time tell a restored copy apart."""
        return self.path / "replica-marker"

    @property
    def proxies_file(self) -> Path:
        """The proxy endpoints set with `shoplist config proxies`."""
        return self.path / "proxies.json"

    @property
    def socket_dir(self) -> Path:
        """The private directory of the server's Unix socket: `run/` in the home when the socket path
        fits the system limit, else a short per-home directory in the temp folder."""
        inside = self.path / "run"
        if len(os.fsencode(inside / SOCKET_NAME)) <= SOCKET_PATH_LIMIT:
            return inside
        digest = hashlib.sha256(os.fsencode(self.path)).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"shoplist-{os.getuid()}-{digest}"

    def prepare(self) -> None:
        """Create the home if needed and check that it is a writable directory.

        Raises HomeNotWritableError saying what is wrong.
        """
        if self.path.exists() and not self.path.is_dir():
            raise HomeNotWritableError(f"home {self.path} is not a directory")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise HomeNotWritableError(f"cannot create home {self.path}: {error.strerror}") from None
        probe = self.path / f".write-probe-{os.getpid()}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as error:
            raise HomeNotWritableError(f"home {self.path} is not writable: {error.strerror}") from None


def resolve_home(explicit: str | None = None) -> Home:
    """Return the home named by `explicit`, else by $SHOPLIST_HOME, else the per-user data directory."""
    chosen = explicit or os.environ.get(HOME_ENV)
    if chosen:
        return Home(Path(chosen).expanduser().absolute())
    import platformdirs

    return Home(platformdirs.user_data_path(APP_NAME, appauthor=False))
