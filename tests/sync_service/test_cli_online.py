"""The online commands' bad input and offline behaviour: clear one-line errors, right exit codes, and
local data left alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg

from sync_service.home import Home
from sync_service.keychain import keyring_marker
from sync_service.share_code import list_id_of
from sync_service.store import Store
from tests.sync_service.conftest import REPO, Result, Shoplist, cli_environment


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


def test_status_warns_that_the_secrets_are_in_the_owner_only_file(shoplist: Shoplist, tmp_path: Path) -> None:
    shoplist("new", "Groceries")
    secrets = shoplist("--json", "status").json()["secrets"]
    where = f"an owner-only file, {tmp_path / 'home' / 'secrets' / 'secrets.json'}"
    assert secrets == {
        "where": f"{where}, because SHOPLIST_KEYRING=file asks for it",
        "fallback": True,
        "problem": None,
    }
    text = shoplist("status")
    assert text.code == 0
    assert text.stdout.splitlines()[-1] == (
        f"secrets:       warning: not in a keyring but in {where}, because SHOPLIST_KEYRING=file asks for it"
    )


def run_with_keyring(home: Path, database: str | None, keyring_file: Path, *arguments: str) -> Result:
    """Run the CLI where a (test) system keyring exists, found through keyring's own setting."""
    environment = cli_environment(database)
    environment.update(
        SHOPLIST_KEYRING="auto",
        PYTHON_KEYRING_BACKEND="tests.sync_service.fake_keyring.FileBackedKeyring",
        TEST_KEYRING_FILE=str(keyring_file),
    )
    command = [sys.executable, "-m", "sync_service.cli", "--home", str(home), *arguments]
    completed = subprocess.run(
        command, capture_output=True, text=True, cwd=REPO, env=environment, timeout=120, check=False
    )
    return Result(completed.returncode, completed.stdout, completed.stderr)


def test_status_says_the_secrets_are_in_the_system_keyring(postgres_database: str, tmp_path: Path) -> None:
    home, keyring_file = tmp_path / "home", tmp_path / "keyring.json"
    assert run_with_keyring(home, postgres_database, keyring_file, "new", "Groceries").code == 0
    secrets = run_with_keyring(home, postgres_database, keyring_file, "--json", "status").json()["secrets"]
    assert secrets == {
        "where": "the system keyring (fake keyring FileBackedKeyring)",
        "fallback": False,
        "problem": None,
    }
    text = run_with_keyring(home, postgres_database, keyring_file, "status").stdout.splitlines()[-1]
    assert text == "secrets:       in the system keyring (fake keyring FileBackedKeyring)"


def test_status_still_answers_when_the_secrets_cannot_be_reached(shoplist: Shoplist, tmp_path: Path) -> None:
    shoplist("new", "Groceries")
    marker = keyring_marker(Home(tmp_path / "home"))
    marker.parent.mkdir(exist_ok=True)
    marker.write_text("")  # the home's secrets are in a keyring that SHOPLIST_KEYRING=file shuts out
    secrets = shoplist("--json", "status").json()["secrets"]
    assert secrets["where"] is None and "SHOPLIST_KEYRING=file shuts out" in secrets["problem"]
    last_line = shoplist("status").stdout.splitlines()[-1]
    assert last_line.startswith("secrets:       warning: the secrets cannot be reached: this home keeps")
