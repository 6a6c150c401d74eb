"""Replica identities: fresh, random, never reused (the lesson of Riak's kv679 bug)."""

from __future__ import annotations

import secrets

REPLICA_ID_MAX_LENGTH = 64


def new_replica_id() -> str:
    """Return a fresh replica id: 16 lowercase hex characters drawn from the OS's randomness.

    A replica that restarts from a copy of old state (a restored backup, a reinstall) must take a new id:
    reusing an id would mint dots that other replicas already hold with different content.
    """
    return secrets.token_hex(8)


def check_replica_id(replica: object) -> str:
    """Return `replica` if it is a usable replica id, else raise ValueError saying why."""
    if not isinstance(replica, str):
        raise ValueError(f"a replica id must be a str, not {type(replica).__name__}")
    if not 0 < len(replica) <= REPLICA_ID_MAX_LENGTH:
        raise ValueError(
            f"a replica id must have 1 to {REPLICA_ID_MAX_LENGTH} characters, got {len(replica)}"
        )
    return replica
