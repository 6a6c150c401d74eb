"""Key files and members files: formats, owner-only secrets, clear errors, and `shoplist-server keys`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import zmq.auth

from server.cli import main
from server.keys import (
    KeyFileError,
    format_key_file,
    generate,
    load_members,
    load_secret,
    others_may_read,
    parse_key_file,
    parse_members,
    revoke,
    revoke_in_members,
    write_key_pair,
    write_members,
)
from tests.sync_service.conftest import REPO


def test_a_written_key_pair_loads_back_and_its_secret_is_owner_only(tmp_path: Path) -> None:
    pair, public_path, secret_path = write_key_pair(tmp_path, "n1")
    assert load_secret(secret_path) == pair
    assert oct(secret_path.stat().st_mode & 0o777) == oct(0o600)
    assert parse_key_file(public_path.read_text()) == (pair.public, None)
    assert pair.secret not in public_path.read_text()


def test_key_files_are_zeromq_certificates(tmp_path: Path) -> None:
    pair, public_path, secret_path = write_key_pair(tmp_path, "p1")
    assert zmq.auth.load_certificate(str(secret_path)) == (pair.public.encode(), pair.secret.encode())
    assert zmq.auth.load_certificate(str(public_path)) == (pair.public.encode(), None)


def test_keys_are_never_overwritten(tmp_path: Path) -> None:
    write_key_pair(tmp_path, "n1")
    with pytest.raises(KeyFileError, match="never overwritten"):
        write_key_pair(tmp_path, "n1")


def test_a_missing_key_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match=r"does not exist.*shoplist-server keys"):
        load_secret(tmp_path / "nope.key_secret")


def test_a_garbage_key_file_is_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "bad.key_secret"
    garbage.write_bytes(b"\xff\xfe not a key")
    garbage.chmod(0o600)
    with pytest.raises(KeyFileError, match=r"cannot read|not a Curve key file"):
        load_secret(garbage)
    garbage.write_text('curve\n    public-key = "short"\n')
    with pytest.raises(KeyFileError, match="not a Curve key file"):
        load_secret(garbage)


def test_a_public_key_file_is_not_a_secret_one(tmp_path: Path) -> None:
    _, public_path, _ = write_key_pair(tmp_path, "n1")
    public_path.chmod(0o600)
    with pytest.raises(KeyFileError, match="only a public key"):
        load_secret(public_path)


def test_a_secret_whose_public_half_does_not_match_is_refused(tmp_path: Path) -> None:
    first, other = generate(), generate()
    path = tmp_path / "mixed.key_secret"
    path.write_text(format_key_file("mixed", other.public, first.secret))
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match="does not belong"):
        load_secret(path)


def test_group_or_other_permission_bits_count_as_readable_by_others() -> None:
    assert not others_may_read(0o600) and not others_may_read(0o400) and not others_may_read(0o700)
    assert all(others_may_read(mode) for mode in (0o640, 0o604, 0o644, 0o610, 0o601, 0o666))


@pytest.mark.skipif(
    os.name == "nt", reason="Windows files have no group/other permission bits for chmod to set"
)
def test_a_secret_key_file_other_users_can_read_is_refused(tmp_path: Path) -> None:
    _, _, secret_path = write_key_pair(tmp_path, "n1")
    secret_path.chmod(0o644)
    with pytest.raises(KeyFileError, match=r"readable by other users.*chmod 600"):
        load_secret(secret_path)


def test_members_come_from_a_members_file_or_a_directory_of_public_keys(tmp_path: Path) -> None:
    pairs = {name: write_key_pair(tmp_path / "keys", name)[0] for name in ("n1", "n2", "p1")}
    write_members(tmp_path / "members", {name: pair.public for name, pair in pairs.items()})
    expected = frozenset(pair.public for pair in pairs.values())
    assert load_members(tmp_path / "members").allowed == expected
    assert load_members(tmp_path / "keys").allowed == expected  # *.key only: the secrets are not members


def test_a_members_file_with_a_bad_line_or_no_keys_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="line 2"):
        parse_members(f"# comment\nnot-a-key n1\n{generate().public} n2\n")
    (tmp_path / "empty").write_text("# nobody\n")
    with pytest.raises(KeyFileError, match="no member keys"):
        load_members(tmp_path / "empty")


def test_the_keys_command_writes_a_pair_and_prints_the_public_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "--out", str(tmp_path), "n7"]) == 0
    public = capsys.readouterr().out.strip()
    assert load_secret(tmp_path / "n7.key_secret").public == public
    assert main(["keys", "--out", str(tmp_path), "--json", "p7"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["public"] == load_secret(Path(info["secret_file"])).public
    assert main(["keys", "--out", str(tmp_path), "n7"]) == 1
    assert "never overwritten" in capsys.readouterr().err


@pytest.mark.parametrize("role", ["node", "proxy"])
def test_without_keys_or_insecure_a_server_refuses_to_start_and_says_how_to_make_keys(
    tmp_path: Path, role: str
) -> None:
    command = [sys.executable, "-m", "server.cli", role, "--bind", "tcp://127.0.0.1:1"]
    command += ["--publish", "tcp://127.0.0.1:2", "--seeds", "tcp://127.0.0.1:3"]
    if role == "node":
        command += ["--id", "n1", "--data", str(tmp_path)]
    shown = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=REPO, check=False)
    assert shown.returncode == 2
    assert "keys are required" in shown.stderr and "shoplist-server keys --out" in shown.stderr
    assert "--insecure" in shown.stderr


def test_a_server_refuses_a_seed_that_pins_no_key(tmp_path: Path) -> None:
    write_key_pair(tmp_path, "p1")
    command = [sys.executable, "-m", "server.cli", "proxy", "--bind", "tcp://127.0.0.1:1"]
    command += ["--publish", "tcp://127.0.0.1:2", "--seeds", "tcp://127.0.0.1:3"]
    command += ["--key", str(tmp_path / "p1.key_secret")]
    shown = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=REPO, check=False)
    assert shown.returncode == 2 and "has no ?key=" in shown.stderr


def test_a_revoked_line_revokes_its_key_even_where_another_line_allows_it() -> None:
    kept, gone = generate().public, generate().public
    keys = parse_members(f"{kept} n1\n{gone} n2\nrevoked {gone} n2\n")
    assert keys.allowed == frozenset({kept}) and keys.revoked == frozenset({gone})
    with pytest.raises(ValueError, match="line 1 `revoked` is not followed by"):
        parse_members("revoked n2\n")


def test_revoking_by_name_or_key_marks_the_line_and_an_unlisted_key_gets_a_line_of_its_own() -> None:
    one, two, stranger = generate().public, generate().public, generate().public
    text = f"# header\n{one} n1\n{two} n2\n"
    by_name, key = revoke_in_members(text, "n2")
    assert key == two and parse_members(by_name).revoked == frozenset({two})
    assert revoke_in_members(by_name, two) == (by_name, two)  # revoking again changes nothing
    by_key, _ = revoke_in_members(text, one)
    assert parse_members(by_key).allowed == frozenset({two})
    unlisted, key = revoke_in_members(text, stranger)
    assert key == stranger and unlisted.endswith(f"revoked {stranger}\n")
    with pytest.raises(ValueError, match="neither a name"):
        revoke_in_members(text, "n7")


def test_revoke_renames_a_directorys_key_file_and_rewrites_a_members_file(tmp_path: Path) -> None:
    pairs = {name: write_key_pair(tmp_path / "keys", name)[0] for name in ("n1", "n2")}
    key, changed = revoke(tmp_path / "keys", "n2")
    assert key == pairs["n2"].public and changed == tmp_path / "keys" / "n2.revoked"
    assert not (tmp_path / "keys" / "n2.key").exists()
    loaded = load_members(tmp_path / "keys")
    assert loaded.allowed == frozenset({pairs["n1"].public}) and loaded.revoked == frozenset({key})
    write_members(tmp_path / "members", {name: pair.public for name, pair in pairs.items()})
    revoke(tmp_path / "members", pairs["n1"].public)
    assert load_members(tmp_path / "members").revoked == frozenset({pairs["n1"].public})
    with pytest.raises(KeyFileError, match="no key file named 'n7'"):
        revoke(tmp_path / "keys", "n7")


def test_the_revoke_command_prints_the_key_and_fails_clearly_for_an_unknown_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pair = write_key_pair(tmp_path, "n1")[0]
    write_key_pair(tmp_path, "n2")
    assert main(["revoke", "--members", str(tmp_path), "n1"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == pair.public and "on every node" in err
    assert main(["revoke", "--members", str(tmp_path), "nobody"]) == 1
    assert "no key file named 'nobody'" in capsys.readouterr().err


def test_a_local_cluster_started_again_keeps_the_keys_its_members_file_revoked(tmp_path: Path) -> None:
    from server.cluster import cluster_keys

    pairs = cluster_keys(tmp_path, ["n1", "n2"])
    revoke(tmp_path / "members", "n2")
    cluster_keys(tmp_path, ["n1", "n2"])
    assert load_members(tmp_path / "members").revoked == frozenset({pairs["n2"].public})
