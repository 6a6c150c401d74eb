"""Finding the icons and the sibling programs in a checkout, a virtual environment or a frozen bundle."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sync_service import resources


def _fake_program(folder: Path, name: str) -> Path:
    path = folder / name
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_a_program_beside_the_running_executable_wins_over_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bundle, elsewhere = tmp_path / "bundle", tmp_path / "elsewhere"
    bundle.mkdir()
    elsewhere.mkdir()
    sibling = _fake_program(bundle, "shoplist-desktop")
    _fake_program(elsewhere, "shoplist-desktop")
    monkeypatch.setattr(sys, "executable", str(bundle / "shoplist-sync"))
    monkeypatch.setenv("PATH", str(elsewhere))
    assert resources.program_command("shoplist-desktop", "desktop.app") == [str(sibling)]


def test_a_missing_program_runs_as_a_module_of_this_python(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert resources.find_program("shoplist-desktop") is None
    assert resources.program_command("shoplist-desktop", "desktop.app") == [
        str(tmp_path / "python"),
        "-m",
        "desktop.app",
    ]


def test_a_frozen_bundle_finds_icons_in_its_own_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "icons").mkdir()
    (tmp_path / "icons" / "only-in-bundle.svg").write_text("<svg/>")
    monkeypatch.delenv(resources.ICONS_ENV, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resources.icon_path("only-in-bundle.svg") == tmp_path / "icons" / "only-in-bundle.svg"


def _macos_app(root: Path) -> tuple[Path, Path]:
    """Build Shoplist.app with the tray helper app nested as a login item; return both MacOS folders."""
    outer = root / "Shoplist.app" / "Contents" / "MacOS"
    helper = outer.parent / "Library" / "LoginItems" / resources.MACOS_HELPER_APP / "Contents" / "MacOS"
    for folder in (outer, helper):
        folder.mkdir(parents=True)
        _fake_program(folder, "shoplist-sync")
    _fake_program(outer, "shoplist-desktop")
    return outer, helper


def test_in_a_macos_app_the_tray_service_runs_as_the_dockless_helper(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    outer, helper = _macos_app(tmp_path)
    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr(sys, "executable", str(outer / "shoplist-desktop"))
    assert resources.find_program("shoplist-sync") == str(helper / "shoplist-sync")


def test_the_macos_helper_finds_the_window_in_the_outer_app(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    outer, helper = _macos_app(tmp_path)
    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr(sys, "executable", str(helper / "shoplist-sync"))
    assert resources.find_program("shoplist-desktop") == str(outer / "shoplist-desktop")
    assert resources.find_program("shoplist-sync") == str(helper / "shoplist-sync")
