"""The rules of a home's keychain without any I/O: which backend holds its secrets, how the fallback file
encodes them, and the sentence that tells the user where they are."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from sync_service.errors import EnvironmentProblem

SETTING_ENV = "SHOPLIST_KEYRING"
SETTINGS = ("auto", "file", "system")
FILE_FORMAT = "shoplist-secrets"
FILE_VERSION = 1
MAX_NAME_LENGTH = 100
MAX_VALUE_LENGTH = 10_000

Kind = Literal["keyring", "file"]
# The backend that is the system keyring on each platform (module, class): when keyring finds no backend,
# the reason this one gave is what the user needs to read (no D-Bus session, a build without it, ...).
PLATFORM_BACKENDS = {
    "linux": ("keyring.backends.SecretService", "Keyring"),
    "darwin": ("keyring.backends.macOS", "Keyring"),
    "win32": ("keyring.backends.Windows", "WinVaultKeyring"),
}


class KeychainError(EnvironmentProblem):
    """A home's secrets cannot be read or kept: the keyring is gone, the file is damaged or exposed."""


class KeychainCorruptError(KeychainError):
    """The fallback file does not hold secrets in the format this release writes."""


@dataclass(frozen=True)
class Choice:
    """Where a home's secrets live, and why (the why ends the `where` sentence of the file fallback)."""

    kind: Kind
    reason: str = ""


def service_name(home_path: str) -> str:
    """Return the keyring service of the home at `home_path` (absolute): one per home, so several homes
    of one user (tests, the two-homes walkthrough) never share a secret."""
    return f"shoplist home {home_path}"


def parse_setting(value: str | None) -> str:
    """Return the $SHOPLIST_KEYRING setting ("auto" when unset). Raises KeychainError on any other word."""
    setting = (value or "auto").strip().lower() or "auto"
    if setting not in SETTINGS:
        raise KeychainError(f"{SETTING_ENV}={value!r} is not one of {', '.join(SETTINGS)}")
    return setting


def choose(
    setting: str, recorded: Kind | None, keyring_problem: str | None, recorded_reason: str = ""
) -> Choice:
    """Return where a home keeps its secrets.

    `recorded` is the place the home already uses (None for a home that stored no secret yet): a home
    never moves silently, since a secret left behind would look lost. `keyring_problem` is why the system
    keyring cannot be used (None when it can). Raises KeychainError when the recorded place is out of
    reach or contradicts the setting. `recorded_reason` is why the file was chosen when it was made.
    """
    if recorded == "file":
        if setting == "system":
            raise KeychainError(
                f"this home keeps its secrets in a file, not the system keyring; unset {SETTING_ENV}"
            )
        return Choice("file", recorded_reason or "this home has kept them there since it was created")
    if recorded == "keyring":
        if setting == "file":
            raise KeychainError(
                f"this home keeps its secrets in the system keyring, which {SETTING_ENV}=file shuts out"
            )
        if keyring_problem is not None:
            raise KeychainError(
                f"this home keeps its secrets in the system keyring, which cannot be used now: "
                f"{keyring_problem} (unlock or start the keyring and try again)"
            )
        return Choice("keyring")
    if setting == "file":
        return Choice("file", f"{SETTING_ENV}=file asks for it")
    if keyring_problem is None:
        return Choice("keyring")
    if setting == "system":
        raise KeychainError(f"{SETTING_ENV}=system, but the system keyring cannot be used: {keyring_problem}")
    return Choice("file", f"the system keyring cannot be used: {keyring_problem}")


def describe(choice: Choice, backend_name: str, file_path: str) -> str:
    """Return, in one human sentence fragment, where the secrets are: "the system keyring
    (SecretService)" or "an owner-only file, HOME/secrets/secrets.json, because the system keyring cannot
    be used: no keyring backend is available (...)"."""
    if choice.kind == "keyring":
        return f"the system keyring ({backend_name})"
    return f"an owner-only file, {file_path}, because {choice.reason}"


@dataclass(frozen=True)
class SecretsReport:
    """Where a home's secrets are, for `status`, the window and the sync service's log: `where` is the
    `describe` fragment, `fallback` says it is the owner-only file, `problem` why the keychain is out of
    reach (then `where` is None)."""

    where: str | None
    fallback: bool
    problem: str | None = None

    def line(self) -> str:
        """Return one line saying where the secrets are, worded as a warning unless in a keyring."""
        if self.problem is not None:
            return f"warning: the secrets cannot be reached: {self.problem}"
        if self.fallback:
            return f"warning: not in a keyring but in {self.where}"
        return f"in {self.where}"

    def to_json(self) -> dict[str, Any]:
        """The `status --json` shape: {"where", "fallback", "problem"}."""
        return {"where": self.where, "fallback": self.fallback, "problem": self.problem}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SecretsReport:
        return cls(data["where"], bool(data["fallback"]), data["problem"])


def platform_backend(platform: str) -> tuple[str, str] | None:
    """Return the (module, class) of the system keyring backend on `platform` (a `sys.platform` value),
    or None where keyring has none."""
    return PLATFORM_BACKENDS.get("linux" if platform.startswith("linux") else platform)


def no_backend_problem(backend_name: str | None, why: str | None) -> str:
    """Return why no keyring backend is available, naming the platform's own backend and its reason."""
    if backend_name is None or why is None:
        return "no keyring backend is available"
    return f"no keyring backend is available ({backend_name}: {why})"


def display_name(keyring_name: str) -> str:
    """Return a keyring backend's name as a person knows it ("SecretService Keyring" -> "SecretService")."""
    name = keyring_name.strip()
    return name.removesuffix(" Keyring").strip() or name


def check_entry(name: str, value: str) -> None:
    """Raise KeychainError unless `name` and `value` can be kept by every backend (short printable
    text without line breaks)."""
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise KeychainError(f"secret name {name!r} is not a short printable name")
    if not value or len(value) > MAX_VALUE_LENGTH or not value.isprintable():
        raise KeychainError(
            f"the secret {name!r} must be non-empty printable text of at most 10,000 characters"
        )


def encode_file(secrets: dict[str, str], reason: str) -> bytes:
    """Return the fallback file's bytes for `secrets`, kept there for `reason` (said by `where`)."""
    document = {
        "format": FILE_FORMAT,
        "version": FILE_VERSION,
        "reason": reason,
        "secrets": dict(sorted(secrets.items())),
    }
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")


def decode_file(data: bytes, where: str) -> tuple[dict[str, str], str]:
    """Return the secrets of a fallback file and why they are there. Raises KeychainCorruptError naming
    `where` on anything this release did not write."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise KeychainCorruptError(
            f"{where} is damaged (not JSON); the secrets in it cannot be read"
        ) from None
    if not isinstance(document, dict) or document.get("format") != FILE_FORMAT:
        raise KeychainCorruptError(f"{where} is not a Shoplist secrets file")
    if document.get("version") != FILE_VERSION:
        raise KeychainCorruptError(
            f"{where} has format version {document.get('version')!r}, which this release does not know"
        )
    secrets = document.get("secrets")
    if not isinstance(secrets, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in secrets.items()
    ):
        raise KeychainCorruptError(f"{where} is damaged (its secrets are not text)")
    reason = document.get("reason", "")
    return dict(secrets), reason if isinstance(reason, str) else ""
