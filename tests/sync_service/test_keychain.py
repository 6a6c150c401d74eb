"""A home's keychain: the owner-only file fallback (permissions, atomic writes, damage reported), the
system keyring path through an in-memory keyring backend, and the choice between them."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from hypothesis import given
from hypothesis import strategies as st
from keyring.backends import fail

from sync_service import keychain_core
from sync_service.home import Home
from sync_service.keychain import (
    CLIENT_PUBLIC_KEY,
    client_keys,
    keyring_marker,
    open_keychain,
    secrets_dir,
    secrets_file,
    secrets_report,
)
from sync_service.keychain_core import (
    Choice,
    KeychainCorruptError,
    KeychainError,
    choose,
    decode_file,
    encode_file,
    platform_backend,
    service_name,
)
from tests.sync_service.fake_keyring import LockedKeyring, MemoryKeyring


@pytest.fixture
def home(tmp_path: Path) -> Home:
    made = Home(tmp_path / "home")
    made.prepare()
    return made


@pytest.fixture
def system_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryKeyring]:
    """Make an in-memory keyring the system's, and let the keychain look for it."""
    memory = MemoryKeyring()
    previous = keyring.get_keyring()
    keyring.set_keyring(memory)
    monkeypatch.setenv("SHOPLIST_KEYRING", "auto")
    yield memory
    keyring.set_keyring(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ----- the file fallback --------------------------------------------------------------------------------


def test_the_file_fallback_is_owner_only_in_an_owner_only_folder(home: Home) -> None:
    keychain = open_keychain(home)
    keychain.set("database-password", "s3cret")
    assert keychain.is_fallback
    assert mode(secrets_dir(home)) == 0o700
    assert mode(secrets_file(home)) == 0o600
    assert keychain.get("database-password") == "s3cret"
    assert open_keychain(home).get("database-password") == "s3cret"


def test_the_fallback_says_where_and_why(home: Home) -> None:
    where = open_keychain(home).where()
    assert where == f"an owner-only file, {secrets_file(home)}, because SHOPLIST_KEYRING=file asks for it"


def test_set_replace_and_delete_keep_the_other_secrets(home: Home) -> None:
    keychain = open_keychain(home)
    keychain.set("a", "1")
    keychain.set("b", "2")
    keychain.set("a", "3")
    keychain.delete("b")
    keychain.delete("never-set")
    assert (keychain.get("a"), keychain.get("b")) == ("3", None)
    assert json.loads(secrets_file(home).read_text())["secrets"] == {"a": "3"}


def test_a_write_leaves_no_partial_file_and_a_failed_one_keeps_the_old_secrets(
    home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    keychain = open_keychain(home)
    keychain.set("database-password", "old")

    def broken_replace(self: Path, target: Path) -> Path:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "replace", broken_replace)
    with pytest.raises(KeychainError, match="No space left on device"):
        keychain.set("database-password", "new")
    monkeypatch.undo()
    assert open_keychain(home).get("database-password") == "old"
    assert sorted(path.name for path in secrets_dir(home).iterdir()) == [".lock", "secrets.json"]


def set_many(home_path: str, worker: int) -> None:
    keychain = open_keychain(Home(Path(home_path)))
    for index in range(20):
        keychain.set(f"worker-{worker}-{index}", "x" * 50)


def test_writers_in_several_processes_lose_no_secret(home: Home) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=set_many, args=(str(home.path), worker)) for worker in range(3)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(120)
        assert process.exitcode == 0
    stored = json.loads(secrets_file(home).read_text())["secrets"]
    assert len(stored) == 60


@pytest.mark.parametrize(
    "contents",
    [b"\x00\xff not json", b"[]", b'{"format": "other"}', b'{"format": "shoplist-secrets", "version": 9}',
     b'{"format": "shoplist-secrets", "version": 1, "secrets": {"a": 1}}'],
)  # fmt: skip
def test_a_garbage_file_is_a_clear_error_and_is_left_as_it_was(home: Home, contents: bytes) -> None:
    open_keychain(home).set("database-password", "s3cret")
    secrets_file(home).write_bytes(contents)
    with pytest.raises(KeychainCorruptError, match=str(secrets_file(home))):
        open_keychain(home).get("database-password")
    with pytest.raises(KeychainCorruptError):
        open_keychain(home).set("other", "value")
    assert secrets_file(home).read_bytes() == contents


def test_a_file_others_can_read_is_refused(home: Home) -> None:
    open_keychain(home).set("database-password", "s3cret")
    secrets_file(home).chmod(0o644)
    with pytest.raises(KeychainError, match="chmod 600"):
        open_keychain(home).get("database-password")


def test_names_and_values_that_no_backend_keeps_are_refused(home: Home) -> None:
    keychain = open_keychain(home)
    for name, value in (("", "v"), ("a\nb", "v"), ("a", ""), ("a", "line\nbreak")):
        with pytest.raises(KeychainError):
            keychain.set(name, value)
    assert not secrets_file(home).exists()


@given(st.dictionaries(st.text(min_size=1, max_size=20), st.text(max_size=50), max_size=5))
def test_the_file_format_round_trips(secrets: dict[str, str]) -> None:
    assert decode_file(encode_file(secrets, "no keyring"), "f") == (secrets, "no keyring")


# ----- the system keyring -------------------------------------------------------------------------------


def test_with_a_keyring_the_secrets_go_there_under_the_homes_service(
    home: Home, system_keyring: MemoryKeyring
) -> None:
    keychain = open_keychain(home)
    keychain.set("database-password", "s3cret")
    assert not keychain.is_fallback
    assert keychain.where() == "the system keyring (fake keyring MemoryKeyring)"
    assert system_keyring.passwords == {(service_name(str(home.path)), "database-password"): "s3cret"}
    assert not secrets_file(home).exists()
    assert keyring_marker(home).exists()
    assert open_keychain(home).get("database-password") == "s3cret"
    keychain.delete("database-password")
    keychain.delete("database-password")
    assert system_keyring.passwords == {}


def test_two_homes_never_share_a_secret(tmp_path: Path, system_keyring: MemoryKeyring) -> None:
    first, second = Home(tmp_path / "first"), Home(tmp_path / "second")
    first.prepare()
    second.prepare()
    open_keychain(first).set("database-password", "one")
    open_keychain(second).set("database-password", "two")
    assert open_keychain(first).get("database-password") == "one"
    assert open_keychain(second).get("database-password") == "two"


def test_an_injected_backend_is_used_as_the_keyring(home: Home) -> None:
    memory = MemoryKeyring()
    os.environ["SHOPLIST_KEYRING"] = "auto"
    try:
        open_keychain(home, memory).set("a", "1")
    finally:
        os.environ["SHOPLIST_KEYRING"] = "file"
    assert list(memory.passwords.values()) == ["1"]


def test_no_keyring_backend_falls_back_to_the_file_and_says_so(
    home: Home, system_keyring: MemoryKeyring
) -> None:
    keyring.set_keyring(fail.Keyring())
    keychain = open_keychain(home)
    assert keychain.is_fallback
    assert "because the system keyring cannot be used: no keyring backend is available" in keychain.where()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Secret Service is Linux's keyring")
def test_without_a_backend_the_reason_names_the_platform_backend_and_why_it_failed(
    home: Home, system_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    keyring.set_keyring(fail.Keyring())
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    assert (
        open_keychain(home)
        .where()
        .endswith(
            "no keyring backend is available (SecretService: Unable to initialize SecretService:"
            " Environment variable DBUS_SESSION_BUS_ADDRESS is unset)"
        )
    )


def test_a_backend_missing_from_the_build_is_named_as_such(
    home: Home, system_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    keyring.set_keyring(fail.Keyring())
    monkeypatch.setitem(keychain_core.PLATFORM_BACKENDS, "linux", ("keyring.backends.NoSuchBackend", "K"))
    monkeypatch.setattr(sys, "platform", "linux")
    assert (
        open_keychain(home)
        .where()
        .endswith("(NoSuchBackend: not in this build (No module named 'keyring.backends.NoSuchBackend'))")
    )


def test_a_keyring_that_fails_its_first_use_falls_back_to_the_file(
    home: Home, system_keyring: MemoryKeyring
) -> None:
    keyring.set_keyring(LockedKeyring())
    keychain = open_keychain(home)
    keychain.set("a", "1")
    assert keychain.is_fallback and secrets_file(home).exists()
    reason = "because the system keyring cannot be used: the collection is locked"
    assert open_keychain(home).where().endswith(reason)  # said again later


def test_a_home_in_the_keyring_never_falls_back_when_the_keyring_is_gone(
    home: Home, system_keyring: MemoryKeyring
) -> None:
    open_keychain(home).set("database-password", "s3cret")
    keyring.set_keyring(LockedKeyring())
    keychain = open_keychain(home)
    assert not keychain.is_fallback
    with pytest.raises(KeychainError, match=r"from the system keyring .*: the collection is locked"):
        keychain.get("database-password")
    assert secrets_report(home).problem is not None
    keyring.set_keyring(fail.Keyring())
    with pytest.raises(KeychainError, match="cannot be used now: no keyring backend is available"):
        open_keychain(home)
    assert not secrets_file(home).exists()


def test_a_home_with_a_file_keeps_it_when_a_keyring_appears(
    home: Home, system_keyring: MemoryKeyring
) -> None:
    os.environ["SHOPLIST_KEYRING"] = "file"
    open_keychain(home).set("a", "1")
    os.environ["SHOPLIST_KEYRING"] = "auto"
    keychain = open_keychain(home)
    assert keychain.is_fallback and keychain.get("a") == "1"
    assert system_keyring.passwords == {}


def test_each_platform_names_its_own_keyring_backend() -> None:
    assert platform_backend("linux") == ("keyring.backends.SecretService", "Keyring")
    assert platform_backend("darwin") == ("keyring.backends.macOS", "Keyring")
    assert platform_backend("win32") == ("keyring.backends.Windows", "WinVaultKeyring")
    assert platform_backend("freebsd14") is None


def test_the_choice_table() -> None:
    assert choose("auto", None, None) == Choice("keyring")
    assert choose("auto", None, "no backend") == Choice(
        "file", "the system keyring cannot be used: no backend"
    )
    assert choose("file", None, None).kind == "file"
    assert choose("auto", "file", None, "this system has no keyring").reason == "this system has no keyring"
    assert choose("auto", "keyring", None) == Choice("keyring")
    for setting, recorded, problem in (
        ("system", None, "no backend"),
        ("system", "file", None),
        ("file", "keyring", None),
        ("auto", "keyring", "locked"),
    ):
        with pytest.raises(KeychainError):
            choose(setting, recorded, problem)


def test_an_unknown_setting_is_a_clear_error(home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPLIST_KEYRING", "wallet")
    with pytest.raises(KeychainError, match="SHOPLIST_KEYRING='wallet' is not one of auto, file, system"):
        open_keychain(home)


# ----- the client key pair ------------------------------------------------------------------------------


def test_the_client_key_pair_is_made_once_and_kept(home: Home) -> None:
    import zmq

    public, secret = client_keys(home)
    assert len(public) == len(secret) == 40
    assert zmq.curve_public(secret.encode()) == public.encode()
    assert client_keys(home) == (public, secret)


def test_the_client_key_pair_lives_in_the_keyring_when_there_is_one(
    home: Home, system_keyring: MemoryKeyring
) -> None:
    public, _ = client_keys(home)
    assert system_keyring.passwords[(service_name(str(home.path)), CLIENT_PUBLIC_KEY)] == public


def test_a_garbage_client_key_is_a_clear_error(home: Home) -> None:
    client_keys(home)
    open_keychain(home).set(CLIENT_PUBLIC_KEY, "not a key")
    with pytest.raises(KeychainError, match="is not a CurveZMQ key"):
        client_keys(home)
