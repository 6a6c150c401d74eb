"""The online commands' bad input and offline behaviour: clear one-line errors, right exit codes, and
local data left alone."""

from __future__ import annotations

from pathlib import Path

import psycopg

from sync_service.home import Home
from sync_service.share_code import list_id_of
from sync_service.store import Store
from tests.sync_service.conftest import Shoplist


def test_join_with_a_garbled_code_is_a_usage_error(shoplist: Shoplist) -> None:
    result = shoplist("join", "SL-NOT-A-CODE")
    assert result.code == 2
    assert result.stderr.startswith("shoplist: a share code has 28 characters")


def test_share_of_an_unknown_list_names_the_problem(shoplist: Shoplist) -> None:
    result = shoplist("share", "Nope")
    assert result.code == 1
    assert "no list matches 'Nope'" in result.stderr


def test_share_prints_a_code_that_names_the_list_and_marks_it_shared(
    shoplist: Shoplist, postgres_database: str, tmp_path: Path
) -> None:
    created = shoplist("--json", "new", "Groceries").json()
    shared = shoplist("--json", "share", "Groceries").json()
    assert shared["id"] == created["id"]
    assert shared["code"].startswith("SL-")
    assert list_id_of(shared["code"]) == created["id"]
    with Store.attach(psycopg.connect(postgres_database, autocommit=True), Home(tmp_path / "home")) as store:
        assert [(summary.id, summary.shared) for summary in store.lists()] == [(created["id"], True)]


def test_sync_without_any_cloud_configured_says_how_to_configure_one(shoplist: Shoplist) -> None:
    result = shoplist("sync")
    assert result.code == 2
    assert "no cloud configured" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_config_proxies_rejects_a_malformed_endpoint_and_keeps_the_old_setting(shoplist: Shoplist) -> None:
    assert shoplist("config", "proxies", "tcp://127.0.0.1:5555").code == 0
    result = shoplist("config", "proxies", "localhost:5555")
    assert result.code == 2
    assert "not a proxy endpoint" in result.stderr
    assert shoplist("--json", "config").json()["proxies"] == ["tcp://127.0.0.1:5555"]


def test_status_before_any_sync_shows_pending_local_changes(shoplist: Shoplist) -> None:
    shoplist("new", "Groceries")
    shoplist("add", "Groceries", "Eggs")
    status = shoplist("--json", "status").json()
    assert status["service_running"] is False
    assert status["state"] is None
    assert status["pending"] == 2
    assert [entry["pending"] for entry in status["lists"]] == [2]


def test_config_proxies_sets_and_resets_the_homes_proxies(shoplist: Shoplist) -> None:
    chosen = shoplist("--json", "config", "proxies", "tcp://127.0.0.1:5555", "tcp://127.0.0.1:5556").json()
    assert chosen["proxies"] == ["tcp://127.0.0.1:5555", "tcp://127.0.0.1:5556"]
    status = shoplist("--json", "status").json()
    assert status["proxies"] == chosen["proxies"]
    assert status["proxies_from"].endswith("proxies.json")
    assert shoplist("--json", "config", "proxies").json()["proxies"] == []
