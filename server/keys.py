"""CurveZMQ key pairs and key files: a node's or proxy's own secret key, and the cluster's members file of
allowed public keys. The text formats are pure functions; reading and writing files are thin shells."""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import zmq

from protocol.endpoints import is_key

PUBLIC_SUFFIX = ".key"
SECRET_SUFFIX = ".key_secret"
MEMBERS_FILE = "members"
REVOKED_SUFFIX = ".revoked"
REVOKED_WORD = "revoked"
MEMBERS_REREAD_SECONDS = 2.0
"""How often a running node looks whether its members file changed, and reads it again if so."""
_FIELD = re.compile(r'^\s*(public-key|secret-key)\s*=\s*"([^"]*)"\s*$', re.MULTILINE)
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
CREATE_HINT = "create one with `shoplist-server keys --out DIR NAME`, or run with --insecure (plain text)"


class KeyFileError(Exception):
    """A key or members file is missing, unreadable, not a key file, or readable by other users."""


@dataclass(frozen=True)
class KeyPair:
    """A Curve25519 key pair as Z85 text (40 characters each)."""

    public: str
    secret: str

    def __repr__(self) -> str:  # never print a secret into a log
        return f"KeyPair(public={self.public!r})"


def generate() -> KeyPair:
    """Return a fresh random key pair."""
    public, secret = zmq.curve_keypair()
    return KeyPair(public.decode("ascii"), secret.decode("ascii"))


def public_of(secret: str) -> str:
    """Return the public key that belongs to `secret`. Raises ValueError if `secret` is not a key."""
    if not is_key(secret):
        raise ValueError("not a 40-character Z85 key")
    return zmq.curve_public(secret.encode("ascii")).decode("ascii")


# ----- text formats (pure) -------------------------------------------------------------------------


def format_key_file(name: str, public: str, secret: str | None) -> str:
    """Return a key file in the ZeroMQ certificate format (ZPL, readable by `zmq.auth.load_certificate`):
    the public half alone, or both halves for the owner-only secret file."""
    kind = "Secret" if secret else "Public"
    lines = [
        f"#   ZeroMQ CURVE **{kind}** Certificate for {name}, written by shoplist-server keys",
        *(["#   DO NOT share this file; it must stay readable by its owner only."] if secret else []),
        "",
        "metadata",
        f'    name = "{name}"',
        "curve",
        f'    public-key = "{public}"',
        *([f'    secret-key = "{secret}"'] if secret else []),
        "",
    ]
    return "\n".join(lines)


def parse_key_file(text: str) -> tuple[str, str | None]:
    """Return (public, secret or None) from a key file. Raises ValueError when it is not one."""
    fields = dict(_FIELD.findall(text))
    public, secret = fields.get("public-key"), fields.get("secret-key")
    if not is_key(public):
        raise ValueError("no valid `public-key` (a 40-character Z85 key) in it")
    if secret is not None and not is_key(secret):
        raise ValueError("its `secret-key` is not a 40-character Z85 key")
    return str(public), secret


def format_members(members: dict[str, str], revoked: frozenset[str] = frozenset()) -> str:
    """Return a members file: one `KEY NAME` line per member (name → public key), sorted by name, those
    whose key is in `revoked` as `revoked KEY NAME`, then a `revoked KEY` line for each other one."""
    header = (
        "# The public keys allowed into this cluster (nodes and proxies), one `KEY NAME` per line;\n"
        "# `revoked KEY NAME` shuts a key out even where gossip announces it.\n"
    )
    lines = [
        f"{REVOKED_WORD} " * (key in revoked) + f"{key} {name}\n" for name, key in sorted(members.items())
    ]
    others = sorted(revoked - set(members.values()))
    return header + "".join(lines) + "".join(f"{REVOKED_WORD} {key}\n" for key in others)


@dataclass(frozen=True)
class MemberKeys:
    """A members file's keys: those allowed in, and those revoked (refused even if gossip announces them:
    a revoked key is never allowed, whatever else lists it)."""

    allowed: frozenset[str]
    revoked: frozenset[str] = frozenset()


NO_MEMBER_KEYS = MemberKeys(frozenset())
"""What a plain-text process (--insecure) has: no keys at all."""


def parse_members(text: str) -> MemberKeys:
    """Return the keys of a members file: `KEY [NAME]` lines allow, `revoked KEY [NAME]` lines revoke;
    blank lines and lines starting with `#` are skipped. Raises ValueError naming the first bad line."""
    allowed, revoked = set(), set()
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        is_revocation = words[0] == REVOKED_WORD
        key = words[1] if is_revocation and len(words) > 1 else words[0]
        if not is_key(key):
            what = "`revoked` is not followed by" if is_revocation else "does not start with"
            raise ValueError(f"line {number} {what} a 40-character Z85 public key")
        (revoked if is_revocation else allowed).add(key)
    return MemberKeys(frozenset(allowed - revoked), frozenset(revoked))


def revoke_in_members(text: str, who: str) -> tuple[str, str]:
    """Return the members file `text` with the key named or given by `who` revoked, and that key. A key
    the file does not list gets a `revoked KEY` line of its own. Raises ValueError when `who` is neither
    a listed name nor a key."""
    lines, found = text.splitlines(), None
    for index, line in enumerate(lines):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        entry = words[1:] if words[0] == REVOKED_WORD else words
        if entry and who in entry[:2]:
            found = entry[0]
            lines[index] = " ".join([REVOKED_WORD, *entry])
    if found is None:
        if not is_key(who):
            raise ValueError(f"{who!r} is neither a name the members file lists nor a public key")
        found = who
        lines.append(f"{REVOKED_WORD} {who}")
    return "".join(f"{line}\n" for line in lines), found


# ----- files (I/O) ---------------------------------------------------------------------------------


def others_may_read(mode: int) -> bool:
    """Return whether a file of permission bits `mode` lets its group or other users at it (POSIX; Windows
    has no such bits and keeps a user's files to that user by their folder's ACL)."""
    return bool(mode & 0o077)


def load_secret(path: Path) -> KeyPair:
    """Return the key pair in the secret key file `path`. Raises KeyFileError when it is missing, not a
    key file, holds a public key that does not match, or can be read by other users."""
    text = _read(path, "secret key file")
    mode = stat.S_IMODE(path.stat().st_mode)
    if os.name != "nt" and others_may_read(mode):
        raise KeyFileError(
            f"secret key file {path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`"
        )
    try:
        public, secret = parse_key_file(text)
    except ValueError as problem:
        raise KeyFileError(f"{path} is not a Curve key file: {problem}") from None
    if secret is None:
        raise KeyFileError(f"{path} holds only a public key; pass the {SECRET_SUFFIX} file")
    if public_of(secret) != public:
        raise KeyFileError(f"{path}: its public key does not belong to its secret key")
    return KeyPair(public, secret)


def load_members(path: Path) -> MemberKeys:
    """Return the keys of a members file, or of a directory (every `*.key` file allows its key, every
    `*.revoked` file revokes its). Raises KeyFileError when none is allowed or a file is bad."""
    if path.is_dir():
        try:
            allowed, revoked = (
                frozenset(
                    parse_key_file(_read(file, "key file"))[0] for file in sorted(path.glob(f"*{suffix}"))
                )
                for suffix in (PUBLIC_SUFFIX, REVOKED_SUFFIX)
            )
        except ValueError as problem:
            raise KeyFileError(f"a key file in {path} is bad: {problem}") from None
        keys = MemberKeys(allowed - revoked, revoked)
    else:
        try:
            keys = parse_members(_read(path, "members file"))
        except ValueError as problem:
            raise KeyFileError(f"members file {path}: {problem}") from None
    if not keys.allowed:
        raise KeyFileError(f"{path} lists no member keys")
    return keys


def revoke(path: Path, who: str) -> tuple[str, Path]:
    """Revoke the key named or given by `who` in the members file or directory `path`; return the key
    and the file that now revokes it. In a directory NAME.key becomes NAME.revoked (a key no file holds
    gets a file of its own). Raises KeyFileError when `who` is unknown and not a key."""
    if not path.is_dir():
        try:
            text, key = revoke_in_members(_read(path, "members file"), who)
        except ValueError as problem:
            raise KeyFileError(f"members file {path}: {problem}") from None
        _replace_members(path, text)
        return key, path
    for file in sorted(path.glob(f"*{PUBLIC_SUFFIX}")):
        try:
            public = parse_key_file(_read(file, "key file"))[0]
        except ValueError:
            continue
        if who in (file.name.removesuffix(PUBLIC_SUFFIX), public):
            revoked = file.with_suffix(REVOKED_SUFFIX)
            file.replace(revoked)
            return public, revoked
    if not is_key(who):
        raise KeyFileError(f"{path} holds no key file named {who!r}, and {who!r} is not a public key")
    revoked = path / f"revoked-{hashlib.sha256(who.encode()).hexdigest()[:12]}{REVOKED_SUFFIX}"
    _write(revoked, format_key_file("revoked", who, None), 0o644, replace=True)
    return who, revoked


def write_key_pair(directory: Path, name: str, pair: KeyPair | None = None) -> tuple[KeyPair, Path, Path]:
    """Write NAME.key (public) and NAME.key_secret (owner-only) into `directory`; return the pair and the
    two paths. Raises KeyFileError for a bad name or when either file exists (keys are never overwritten)."""
    if not _NAME.fullmatch(name):
        raise KeyFileError(f"{name!r} is not a key name (letters, digits, `_`, `.`, `-`; at most 64)")
    pair = pair or generate()
    directory.mkdir(parents=True, exist_ok=True)
    public_path, secret_path = directory / f"{name}{PUBLIC_SUFFIX}", directory / f"{name}{SECRET_SUFFIX}"
    for existing in (public_path, secret_path):
        if existing.exists():
            raise KeyFileError(f"{existing} exists already; keys are never overwritten")
    _write(secret_path, format_key_file(name, pair.public, pair.secret), 0o600)
    _write(public_path, format_key_file(name, pair.public, None), 0o644)
    return pair, public_path, secret_path


def ensure_key_pair(directory: Path, name: str) -> KeyPair:
    """Return the key pair NAME in `directory`, creating it on first use."""
    secret_path = directory / f"{name}{SECRET_SUFFIX}"
    if secret_path.exists():
        return load_secret(secret_path)
    return write_key_pair(directory, name)[0]


def write_members(path: Path, members: dict[str, str], revoked: frozenset[str] = frozenset()) -> None:
    """Write the members file `path` (name → public key, and the `revoked` keys), replacing it atomically."""
    _replace_members(path, format_members(members, revoked))


def _replace_members(path: Path, text: str) -> None:
    """Replace the members file `path` with `text` atomically (a node reading it sees one or the other)."""
    temporary = path.with_name(f".{path.name}.tmp")
    _write(temporary, text, 0o644, replace=True)
    temporary.replace(path)


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KeyFileError(f"{what} {path} does not exist; {CREATE_HINT}") from None
    except (OSError, UnicodeDecodeError) as problem:
        raise KeyFileError(f"cannot read {what} {path}: {problem}") from None


def _write(path: Path, text: str, mode: int, *, replace: bool = False) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if replace else os.O_EXCL)
    descriptor = os.open(path, flags, mode)  # created with its final mode: a secret is never world-readable
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
    os.chmod(path, mode)  # the umask may have taken bits away from a public file
