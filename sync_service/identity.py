"""The replica id of a home: fresh, never reused, renewed when the home is a restored copy (Riak kv679)."""

from __future__ import annotations

import contextlib
import os

from sync_service.errors import HomeNotWritableError
from sync_service.home import Home

MARKER_TEXT = (
    "This file tells this copy of a Shoplist home apart from backups and copies of it.\n"
    "Leave it alone: a changed or copied marker gives the home a new replica id.\n"
)


def home_fingerprint(home: Home) -> str:
    """Return the identity of this copy of the home: the marker file's inode and change time.

    A copy or a restore writes a new file, which gets a new inode and a change time that no tool can set
    back, so it never matches the fingerprint recorded next to the replica id. Creates the marker when
    missing; raises HomeNotWritableError when it cannot.
    """
    try:
        with contextlib.suppress(FileExistsError):
            descriptor = os.open(home.marker_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(descriptor, "w", encoding="utf-8") as marker:
                marker.write(MARKER_TEXT)
        info = os.stat(home.marker_file)
    except OSError as error:
        raise HomeNotWritableError(f"cannot write {home.marker_file}: {error.strerror}") from None
    return f"{info.st_ino}-{info.st_ctime_ns}"


def kept_replica_id(stored_id: str, stored_fingerprint: str, fingerprint: str) -> str | None:
    """Return the stored replica id if it still belongs to this copy of the home, else None: the caller
    then takes a fresh id (crdt.new_replica_id) and records it with `fingerprint`."""
    return stored_id if stored_id and stored_fingerprint == fingerprint else None
