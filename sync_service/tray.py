"""The sync service's tray icon: shows the sync state, offers the menu (open window, sync now, pause,
start at login, quit) and shows notifications. A thin Qt view; the service decides what it shows."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QIcon
from PySide6.QtWidgets import QApplication, QMenu, QStyle, QSystemTrayIcon

from sync_service.change_summary import Notification
from sync_service.resources import icon_path

log = logging.getLogger("shoplist.tray")


class TrayState(Enum):
    """What the icon shows."""

    SYNCED = "synced"
    SYNCING = "syncing"
    OFFLINE = "offline"
    PAUSED = "paused"
    ERROR = "error"


@dataclass(frozen=True)
class TrayStatus:
    """Everything the tray shows about sync: the state, local changes not yet in the cloud, and a line
    of detail for the tooltip (e.g. the proxy in use, or what went wrong)."""

    state: TrayState
    pending: int = 0
    detail: str = ""

    def tooltip(self) -> str:
        """Return the tooltip text."""
        lines = [f"Shoplist: {_STATE_WORDS[self.state]}"]
        if self.pending:
            lines.append(f"{self.pending} change{'s' if self.pending != 1 else ''} waiting to sync")
        if self.detail:
            lines.append(self.detail)
        return "\n".join(lines)


_STATE_WORDS = {
    TrayState.SYNCED: "all changes synced",
    TrayState.SYNCING: "syncing",
    TrayState.OFFLINE: "offline, changes are kept and sent later",
    TrayState.PAUSED: "sync paused",
    TrayState.ERROR: "sync error",
}

_ICON_FILES = {
    TrayState.SYNCED: "tray-synced.svg",
    TrayState.SYNCING: "tray-syncing.svg",
    TrayState.OFFLINE: "tray-offline.svg",
    TrayState.PAUSED: "tray-offline.svg",
    TrayState.ERROR: "tray-error.svg",
}

_FALLBACK_ICONS = {
    TrayState.SYNCED: QStyle.StandardPixmap.SP_DialogApplyButton,
    TrayState.SYNCING: QStyle.StandardPixmap.SP_BrowserReload,
    TrayState.OFFLINE: QStyle.StandardPixmap.SP_MessageBoxWarning,
    TrayState.PAUSED: QStyle.StandardPixmap.SP_MediaPause,
    TrayState.ERROR: QStyle.StandardPixmap.SP_MessageBoxCritical,
}


def tray_available() -> bool:
    """Return whether the desktop offers a system tray (a bare X server or some Wayland shells do not)."""
    return QSystemTrayIcon.isSystemTrayAvailable()


class SyncTray(QObject):
    """The icon and its menu. Signals carry what the user asked for; `show_status` and `notify` take
    what the service wants shown. Works without a tray too: then nothing is drawn, signals still work."""

    open_window_requested = Signal()
    sync_requested = Signal()
    pause_toggled = Signal(bool)
    autostart_toggled = Signal(bool)
    quit_requested = Signal()
    notification_shown = Signal(str, str)  # title, message: lets tests and logs observe notifications

    def __init__(self, *, autostart_enabled: bool, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._icons = {state: _load_icon(state) for state in TrayState}
        self._icon = QSystemTrayIcon(self._icons[TrayState.SYNCING], self)
        self._menu = QMenu()
        self._status_action = self._menu.addAction("Starting…")
        self._status_action.setEnabled(False)
        self._menu.addSeparator()
        self._add_action("Open Shoplist", lambda _: self.open_window_requested.emit())
        self._add_action("Sync now", lambda _: self.sync_requested.emit())
        self._pause_action = self._add_action("Pause sync", self.pause_toggled.emit, checkable=True)
        self._autostart_action = self._add_action(
            "Start at login", self.autostart_toggled.emit, checkable=True, checked=autostart_enabled
        )
        self._menu.addSeparator()
        self._add_action("Quit Shoplist sync", lambda _: self.quit_requested.emit())
        self._icon.setContextMenu(self._menu)
        self._icon.activated.connect(self._on_activated)
        self._icon.messageClicked.connect(self.open_window_requested.emit)
        self._status = TrayStatus(TrayState.SYNCING)

    @property
    def status(self) -> TrayStatus:
        """Return what the tray currently shows."""
        return self._status

    def menu_texts(self) -> list[str]:
        """Return the menu's entries as shown (for tests and accessibility checks)."""
        return [action.text() for action in self._menu.actions() if not action.isSeparator()]

    def show(self) -> None:
        """Put the icon in the tray (if there is one)."""
        self._icon.show()

    def hide(self) -> None:
        """Take the icon out of the tray."""
        self._icon.hide()

    def show_status(self, status: TrayStatus) -> None:
        """Show `status`: icon, tooltip, the menu's status line and the pause check mark."""
        if status == self._status:
            return
        self._status = status
        self._icon.setIcon(self._icons[status.state])
        self._icon.setToolTip(status.tooltip())
        self._status_action.setText(status.tooltip().splitlines()[0])
        self._pause_action.setChecked(status.state is TrayState.PAUSED)

    def notify(self, notification: Notification) -> None:
        """Show a notification about another person's changes to a list."""
        self._icon.showMessage(
            notification.title, notification.message, QSystemTrayIcon.MessageIcon.Information, 8000
        )
        self.notification_shown.emit(notification.title, notification.message)

    def _add_action(
        self,
        text: str,
        on_trigger: Callable[[bool], object],
        *,
        checkable: bool = False,
        checked: bool = False,
    ) -> QAction:
        action = self._menu.addAction(text)
        action.setCheckable(checkable)
        action.setChecked(checked)
        action.triggered.connect(lambda: on_trigger(action.isChecked()))
        return action

    def _on_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (QSystemTrayIcon.ActivationReason.Trigger, QSystemTrayIcon.ActivationReason.DoubleClick):
            self.open_window_requested.emit()


def _load_icon(state: TrayState) -> QIcon:
    path = icon_path(_ICON_FILES[state])
    if path is not None:
        return QIcon(str(path))
    log.warning("icon %s not found; using a standard icon", _ICON_FILES[state])
    style = QApplication.style()
    return style.standardIcon(_FALLBACK_ICONS[state]) if style else QIcon()
