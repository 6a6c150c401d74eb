"""Where a home keeps its parts, including a short socket directory for homes with long paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sync_service.errors import HomeNotWritableError
from sync_service.home import SOCKET_NAME, SOCKET_PATH_LIMIT, Home, resolve_home


def test_a_short_home_keeps_its_socket_inside() -> None:
    assert Home(Path("/home/ann/.local/share/shoplist")).socket_dir == Path(
        "/home/ann/.local/share/shoplist/run"
    )


def test_a_long_home_gets_a_short_socket_directory_of_its_own() -> None:
    first, second = Home(Path("/data/" + "x" * 120)), Home(Path("/data/" + "y" * 120))
    assert len(os.fsencode(first.socket_dir / SOCKET_NAME)) <= SOCKET_PATH_LIMIT
    assert first.socket_dir != second.socket_dir
    assert first.socket_dir == Home(Path("/data/" + "x" * 120)).socket_dir


def test_the_home_comes_from_the_option_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPLIST_HOME", "/srv/from-environment")
    assert resolve_home("/srv/from-option").path == Path("/srv/from-option")
    assert resolve_home(None).path == Path("/srv/from-environment")
    monkeypatch.delenv("SHOPLIST_HOME")
    assert resolve_home(None).path.name == "shoplist"


def test_a_home_under_a_file_cannot_be_prepared(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(HomeNotWritableError, match="cannot create home"):
        Home(tmp_path / "file" / "home").prepare()
