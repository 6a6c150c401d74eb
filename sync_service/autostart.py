"""Start the sync service at login: an XDG autostart entry on Linux, a LaunchAgent on macOS, a Run key on
Windows. Each entry runs the service in the foreground; the session or launchd owns the process."""

from __future__ import annotations

import os
import plistlib
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

ENTRY_NAME = "shoplist-sync"
LAUNCH_AGENT_LABEL = "org.shoplist.sync"
WINDOWS_RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"


@dataclass(frozen=True)
class AutostartFile:
    """A file that makes the session start the service: where it goes and what it holds."""

    path: Path
    content: bytes


def xdg_entry(command: list[str], config_home: Path) -> AutostartFile:
    """Return the XDG autostart desktop entry that runs `command` at login."""
    text = "\n".join(
        [
            "[Desktop Entry]",
            "Type=Application",
            "Name=Shoplist sync",
            "Comment=Keeps your shopping lists in sync in the background",
            f"Exec={_desktop_exec(command)}",
            "Icon=shoplist",
            "Terminal=false",
            "X-GNOME-Autostart-enabled=true",
            "",
        ]
    )
    return AutostartFile(config_home / "autostart" / f"{ENTRY_NAME}.desktop", text.encode())


def launch_agent(command: list[str], home: Path) -> AutostartFile:
    """Return the macOS LaunchAgent property list that runs `command` at login."""
    content = plistlib.dumps(
        {
            "Label": LAUNCH_AGENT_LABEL,
            "ProgramArguments": command,
            "RunAtLoad": True,
            "KeepAlive": False,
            "ProcessType": "Interactive",
        }
    )
    return AutostartFile(home / "Library" / "LaunchAgents" / f"{LAUNCH_AGENT_LABEL}.plist", content)


def windows_run_value(command: list[str]) -> str:
    """Return the command line stored under the Windows Run key."""
    return " ".join(f'"{part}"' if " " in part else part for part in command)


def enable(command: list[str]) -> str:
    """Make the session start `command` at login; return where the entry was written."""
    if sys.platform == "win32":
        _set_run_key(windows_run_value(command))
        return f"HKEY_CURRENT_USER\\{WINDOWS_RUN_KEY}\\{ENTRY_NAME}"
    entry = _platform_file(command)
    entry.path.parent.mkdir(parents=True, exist_ok=True)
    entry.path.write_bytes(entry.content)
    return str(entry.path)


def disable() -> None:
    """Stop starting the service at login (nothing happens if it was not enabled)."""
    if sys.platform == "win32":
        _delete_run_key()
        return
    _platform_file([]).path.unlink(missing_ok=True)


def is_enabled() -> bool:
    """Return whether an autostart entry exists for this user."""
    if sys.platform == "win32":
        return _read_run_key() is not None
    return _platform_file([]).path.exists()


def _platform_file(command: list[str]) -> AutostartFile:
    if sys.platform == "darwin":
        return launch_agent(command, Path.home())
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return xdg_entry(command, config_home)


def _desktop_exec(command: list[str]) -> str:
    """Quote a command for a desktop entry's Exec key (its own rules: % doubles, quoting as a shell)."""
    return " ".join(shlex.quote(part) for part in command).replace("%", "%%")


if sys.platform == "win32":
    import winreg

    def _set_run_key(value: str) -> None:
        with winreg.CreateKey(winreg.HKEY_CURRENT_USER, WINDOWS_RUN_KEY) as key:
            winreg.SetValueEx(key, ENTRY_NAME, 0, winreg.REG_SZ, value)

    def _delete_run_key() -> None:
        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, WINDOWS_RUN_KEY, 0, winreg.KEY_SET_VALUE) as key:
                winreg.DeleteValue(key, ENTRY_NAME)
        except FileNotFoundError:
            pass

    def _read_run_key() -> str | None:
        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, WINDOWS_RUN_KEY) as key:
                value, _ = winreg.QueryValueEx(key, ENTRY_NAME)
                return str(value)
        except FileNotFoundError:
            return None
