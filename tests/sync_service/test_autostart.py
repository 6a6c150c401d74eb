"""Autostart entries for each platform say what to run and go where the session looks for them."""

from __future__ import annotations

import configparser
import plistlib
from pathlib import Path

import pytest

from sync_service import autostart

COMMAND = ["/opt/Shoplist App/shoplist-sync", "--home", "/home/ann/100% lists"]


def test_xdg_entry_lives_in_the_autostart_folder_and_runs_the_command(tmp_path: Path) -> None:
    entry = autostart.xdg_entry(COMMAND, tmp_path)
    assert entry.path == tmp_path / "autostart" / "shoplist-sync.desktop"
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(entry.content.decode())
    section = parser["Desktop Entry"]
    assert section["Type"] == "Application"
    assert section["Exec"] == "'/opt/Shoplist App/shoplist-sync' --home '/home/ann/100%% lists'"


def test_launch_agent_runs_the_command_at_login(tmp_path: Path) -> None:
    entry = autostart.launch_agent(COMMAND, tmp_path)
    assert entry.path == tmp_path / "Library" / "LaunchAgents" / "org.shoplist.sync.plist"
    plist = plistlib.loads(entry.content)
    assert plist["ProgramArguments"] == COMMAND
    assert plist["RunAtLoad"] is True


def test_windows_run_value_quotes_parts_with_spaces() -> None:
    assert autostart.windows_run_value(COMMAND) == (
        '"/opt/Shoplist App/shoplist-sync" --home "/home/ann/100% lists"'
    )


@pytest.mark.parametrize(
    ("platform", "entry"),
    [
        ("linux", "autostart/shoplist-sync.desktop"),
        ("darwin", "Library/LaunchAgents/org.shoplist.sync.plist"),
    ],
)
def test_enable_then_disable_round_trips_with_an_entry_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, platform: str, entry: str
) -> None:
    # The file-based mechanisms behave the same on any machine once the platform is pinned; the Windows
    # Run key needs the real registry and is covered by the value test above.
    monkeypatch.setattr(autostart.sys, "platform", platform)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setattr(autostart.Path, "home", staticmethod(lambda: tmp_path))
    assert not autostart.is_enabled()
    written = autostart.enable(COMMAND)
    assert Path(written) == tmp_path / entry
    assert Path(written).is_file()
    assert autostart.is_enabled()
    autostart.disable()
    assert not autostart.is_enabled()
    autostart.disable()  # disabling twice is harmless
