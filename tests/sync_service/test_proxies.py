"""Which proxies a home uses: the environment first, then its own setting, then a local cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sync_service.errors import UsageError
from sync_service.home import Home
from sync_service.proxies import ProxyChoice, choose_proxies, parse_endpoints, save_proxies

KEY = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    monkeypatch.delenv("SHOPLIST_PROXIES", raising=False)
    monkeypatch.setenv("SHOPLIST_CLUSTER_FILE", str(tmp_path / "cluster.json"))
    return Home(tmp_path / "home")


def test_nothing_configured_means_no_proxies(home: Home) -> None:
    assert choose_proxies(home) == ProxyChoice((), "nothing configured")


def test_a_local_cluster_is_found_without_configuration(home: Home, tmp_path: Path) -> None:
    (tmp_path / "cluster.json").write_text(json.dumps({"proxies": ["tcp://127.0.0.1:7001"], "nodes": []}))
    assert choose_proxies(home) == ProxyChoice(("tcp://127.0.0.1:7001",), "the local cluster")


def test_saved_proxies_beat_the_local_cluster(home: Home, tmp_path: Path) -> None:
    (tmp_path / "cluster.json").write_text(json.dumps({"proxies": ["tcp://127.0.0.1:7001"]}))
    save_proxies(home, ("tcp://shop.example.org:5555",))
    assert choose_proxies(home).endpoints == ("tcp://shop.example.org:5555",)
    save_proxies(home, ())
    assert choose_proxies(home).endpoints == ("tcp://127.0.0.1:7001",)


def test_the_environment_beats_everything(home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    save_proxies(home, ("tcp://shop.example.org:5555",))
    monkeypatch.setenv("SHOPLIST_PROXIES", "tcp://10.0.0.1:1, tcp://10.0.0.2:2")
    assert choose_proxies(home) == ProxyChoice(("tcp://10.0.0.1:1", "tcp://10.0.0.2:2"), "$SHOPLIST_PROXIES")


def test_an_endpoint_may_carry_the_proxy_key() -> None:
    assert parse_endpoints(f"tcp://127.0.0.1:5555?key={KEY}") == (f"tcp://127.0.0.1:5555?key={KEY}",)


@pytest.mark.parametrize("bad", ["127.0.0.1:5555", "http://x:1", "tcp://host", "tcp://h:1?key=short"])
def test_a_malformed_endpoint_is_a_usage_error(bad: str) -> None:
    with pytest.raises(UsageError):
        parse_endpoints(bad)


def test_a_garbage_cluster_file_is_ignored(home: Home, tmp_path: Path) -> None:
    (tmp_path / "cluster.json").write_bytes(b"\xff\x00 not json")
    assert choose_proxies(home).endpoints == ()
