"""The window's own settings (geometry, last list, autocomplete history, notices shown), kept in the
home."""

from __future__ import annotations

from PySide6.QtCore import QSettings

from sync_service.home import Home
from sync_service.keychain_core import SecretsReport

SETTINGS_FILE = "desktop.ini"
SECRETS_NOTICE_KEY = "notices/secrets_file"


def window_settings(home: Home) -> QSettings:
    """Return the settings of the window for `home`: an INI file inside the home, so each home (each
    replica) remembers its own window."""
    return QSettings(str(home.path / SETTINGS_FILE), QSettings.Format.IniFormat)


SECRETS_HEADLINE = "Passwords and keys are kept in an owner-only file, not a keyring (hover for details)"
"""What the status bar says of the secrets notice; its whole text is the status bar's tooltip."""


def secrets_notice(report: SecretsReport, settings: QSettings) -> str:
    """Return the notice that the home's secrets are in the owner-only file rather than a keyring, the
    first time only ("" when they are in a keyring, or the window said so already for this file), and
    remember that it was shown."""
    if not report.fallback or settings.value(SECRETS_NOTICE_KEY, "") == report.where:
        return ""
    settings.setValue(SECRETS_NOTICE_KEY, report.where)
    settings.sync()
    return f"This home's passwords and keys are not in a keyring: they are in {report.where}."
