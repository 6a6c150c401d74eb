"""The store's password lives in the home's keychain: new homes put it there, older homes' password files
move there on open (and stay until the keychain holds it), a lost or damaged entry is a clear error."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

from sync_service.home import Home
from sync_service.keychain import DATABASE_PASSWORD, open_keychain, secrets_dir, secrets_file
from tests.sync_service.conftest import run_shoplist
from tests.sync_service.test_cli import assert_one_line_error
from tests.sync_service.test_cli_online import run_with_keyring


def items(home: Path) -> list[str]:
    return [item["name"] for item in run_shoplist(home, "--json", "show", "Groceries").json()["items"]]


def make_store(home: Path) -> str:
    """Create a store with one list and one item, stop its server, and return its password."""
    run_shoplist(home, "new", "Groceries")
    run_shoplist(home, "add", "Groceries", "Eggs")
    run_shoplist(home, "store", "stop")
    password = open_keychain(Home(home)).get(DATABASE_PASSWORD)
    assert password is not None
    return password


def as_an_older_release_left_it(home: Path, password: str) -> Path:
    """Put the password back in the file older releases kept it in, and empty the keychain."""
    shutil.rmtree(home / "secrets")
    legacy = home / "store-password"
    legacy.write_text(password + "\n")
    legacy.chmod(0o600)
    return legacy


def test_a_new_home_keeps_its_password_in_the_keychain_only(own_home: Path) -> None:
    make_store(own_home)
    assert not (own_home / "store-password").exists()
    assert stat.S_IMODE(secrets_file(Home(own_home)).stat().st_mode) == 0o600
    assert items(own_home) == ["Eggs"]


def test_an_older_homes_password_file_moves_into_the_keychain_on_open(own_home: Path) -> None:
    password = make_store(own_home)
    legacy = as_an_older_release_left_it(own_home, password)
    assert items(own_home) == ["Eggs"]
    assert not legacy.exists()
    assert open_keychain(Home(own_home)).get(DATABASE_PASSWORD) == password
    run_shoplist(own_home, "store", "stop")
    assert items(own_home) == ["Eggs"]


def test_the_password_file_stays_when_the_keychain_cannot_take_it(own_home: Path) -> None:
    password = make_store(own_home)
    legacy = as_an_older_release_left_it(own_home, password)
    (own_home / "secrets").write_text("a file where the keychain's folder goes")
    result = run_shoplist(own_home, "show", "Groceries")
    assert_one_line_error(result, 1, "secrets is not a directory")
    assert legacy.read_text() == password + "\n"
    (own_home / "secrets").unlink()
    assert items(own_home) == ["Eggs"]
    assert not legacy.exists()


def test_a_missing_password_is_a_clear_error_and_the_store_is_kept(own_home: Path) -> None:
    password = make_store(own_home)
    open_keychain(Home(own_home)).delete(DATABASE_PASSWORD)
    result = run_shoplist(own_home, "show", "Groceries")
    assert_one_line_error(
        result, 1, "the store's password is missing from an owner-only file", "left as it is"
    )
    open_keychain(Home(own_home)).set(DATABASE_PASSWORD, password)
    assert items(own_home) == ["Eggs"]


def test_a_damaged_password_entry_is_a_clear_error_and_the_store_is_kept(own_home: Path) -> None:
    password = make_store(own_home)
    open_keychain(Home(own_home)).set(DATABASE_PASSWORD, "not a password!")
    result = run_shoplist(own_home, "show", "Groceries")
    assert_one_line_error(result, 1, "the store's password in an owner-only file", "is damaged")
    open_keychain(Home(own_home)).set(DATABASE_PASSWORD, password)
    assert items(own_home) == ["Eggs"]


def test_a_damaged_secrets_file_is_a_clear_error_and_is_left_as_it_was(own_home: Path) -> None:
    make_store(own_home)
    path = secrets_file(Home(own_home))
    good = path.read_bytes()
    path.write_bytes(b"{ half a file")
    result = run_shoplist(own_home, "show", "Groceries")
    assert_one_line_error(result, 1, str(path), "is damaged (not JSON)")
    assert path.read_bytes() == b"{ half a file"
    path.write_bytes(good)
    assert items(own_home) == ["Eggs"]


def test_a_wrong_password_is_a_clear_error_while_the_server_runs(own_home: Path) -> None:
    password = make_store(own_home)
    run_shoplist(own_home, "store", "start")
    open_keychain(Home(own_home)).set(DATABASE_PASSWORD, "A" * 32)
    result = run_shoplist(own_home, "show", "Groceries")
    assert_one_line_error(result, 1, "does not open the store", "left as it is")
    open_keychain(Home(own_home)).set(DATABASE_PASSWORD, password)
    assert items(own_home) == ["Eggs"]


def test_the_secrets_folder_is_private(own_home: Path) -> None:
    make_store(own_home)
    info = os.stat(secrets_dir(Home(own_home)))
    assert stat.S_IMODE(info.st_mode) == 0o700
    assert json.loads(secrets_file(Home(own_home)).read_text())["format"] == "shoplist-secrets"


def test_with_a_system_keyring_the_password_goes_there_and_the_home_holds_none(
    own_home: Path, tmp_path: Path
) -> None:
    keyring_file = tmp_path / "keyring.json"
    assert run_with_keyring(own_home, None, keyring_file, "new", "Groceries").code == 0
    assert run_with_keyring(own_home, None, keyring_file, "store", "stop").code == 0
    stored = json.loads(keyring_file.read_text())
    assert list(stored) == [f"shoplist home {own_home}\ndatabase-password"]
    assert not secrets_file(Home(own_home)).exists() and not (own_home / "store-password").exists()
    listed = run_with_keyring(own_home, None, keyring_file, "--json", "lists").json()
    assert [entry["title"] for entry in listed] == ["Groceries"]
