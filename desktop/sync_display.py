"""What the status bar says about sync, from the sync service's last report in the store and whether
the service (the tray) is running."""

from __future__ import annotations

from dataclasses import dataclass

from sync_service.store import SyncStatus


@dataclass(frozen=True)
class SyncDisplay:
    """The status bar's sync indicator: a state word, the sentence shown, and the tray icon file."""

    state: str
    text: str
    icon: str


OPENING = SyncDisplay("opening", "Opening your lists…", "tray-syncing.svg")


def describe_sync(status: SyncStatus | None, service_running: bool, waiting: int) -> SyncDisplay:
    """Return the indicator for the service's last `status`, whether it runs now, and the number of
    local changes `waiting` in the outbox (what counts when the service is not there to report)."""
    changes = _changes(waiting)
    if not service_running:
        kept = f" · {changes} kept on this computer" if waiting else ""
        return SyncDisplay("stopped", f"Sync service not running{kept}", "tray-offline.svg")
    if status is None:
        return SyncDisplay("syncing", "Sync service starting…", "tray-syncing.svg")
    pending = _changes(status.pending)
    if status.state == "synced" and not status.pending:
        return SyncDisplay("synced", "Synced", "tray-synced.svg")
    if status.state in ("synced", "syncing"):
        return SyncDisplay(
            "syncing", f"Syncing · {pending} to send" if status.pending else "Syncing…", "tray-syncing.svg"
        )
    if status.state == "offline":
        return SyncDisplay(
            "offline", f"Offline · {pending} waiting" if status.pending else "Offline", "tray-offline.svg"
        )
    if status.state == "paused":
        return SyncDisplay(
            "paused",
            f"Sync paused · {pending} waiting" if status.pending else "Sync paused",
            "tray-offline.svg",
        )
    detail = f": {status.detail}" if status.detail else ""
    return SyncDisplay("error", f"Sync error{detail}", "tray-error.svg")


def _changes(count: int) -> str:
    return f"{count} change{'s' if count != 1 else ''}"
