"""The window's own settings (geometry, last list, autocomplete history), kept in the home."""

from __future__ import annotations

from PySide6.QtCore import QSettings

from sync_service.home import Home

SETTINGS_FILE = "desktop.ini"


def window_settings(home: Home) -> QSettings:
    """Return the settings of the window for `home`: an INI file inside the home, so each home (each
    replica) remembers its own window."""
    return QSettings(str(home.path / SETTINGS_FILE), QSettings.Format.IniFormat)
