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
