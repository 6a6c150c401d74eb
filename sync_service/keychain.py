"""A home's secrets (its database password, the client key pair): kept in the system keyring, or where
the system has none, in an owner-only file in the home, and said which."""

from __future__ import annotations

import contextlib
import importlib
import os
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from sync_service.home import Home
from sync_service.keychain_core import (
    SETTING_ENV,
    Choice,
    KeychainError,
    Kind,
    SecretsReport,
    check_entry,
    choose,
    decode_file,
    describe,
    display_name,
    encode_file,
    no_backend_problem,
    parse_setting,
    platform_backend,
    service_name,
)

DATABASE_PASSWORD = "database-password"
CLIENT_PUBLIC_KEY = "client-public-key"
CLIENT_SECRET_KEY = "client-secret-key"
Z85_KEY_LENGTH = 40
KEYRING_MARKER_TEXT = (
    "This home keeps its secrets (database password, client keys) in the system keyring, under the\n"
    "service named after the home's folder. Removing this file does not remove them.\n"
)


class Backend(Protocol):
    """The part of a `keyring` backend the keychain uses; tests pass an in-memory one."""

    def get_password(self, service: str, username: str) -> str | None: ...

    def set_password(self, service: str, username: str, password: str) -> None: ...

    def delete_password(self, service: str, username: str) -> None: ...


def secrets_dir(home: Home) -> Path:
    """The home's private folder (mode 0700) for the fallback file, its lock and the keyring marker."""
    return home.path / "secrets"


def secrets_file(home: Home) -> Path:
    """The owner-only fallback file used where the system has no keyring."""
    return secrets_dir(home) / "secrets.json"


def keyring_marker(home: Home) -> Path:
    """Present once the home has put a secret in the system keyring: the home never silently leaves it."""
    return secrets_dir(home) / "in-system-keyring"


class Keychain:
    """One home's secrets, in the place `choice` names. Get, set and delete are safe across processes."""

    def __init__(self, home: Home, choice: Choice, backend: Backend | None, backend_name: str) -> None:
        self.home = home
        self.choice = choice
        self._backend = backend
        self._backend_name = backend_name
        self._service = service_name(str(home.path))

    @property
    def is_fallback(self) -> bool:
        """Whether the secrets are in the owner-only file rather than the system keyring."""
        return self.choice.kind == "file"

    def where(self) -> str:
        """Return where the secrets live, as a fragment of a human sentence."""
        return describe(self.choice, self._backend_name, str(secrets_file(self.home)))

    def get(self, name: str) -> str | None:
        """Return the secret `name`, or None if the home has none by that name. Raises KeychainError."""
        if self._backend is None:
            return _read_file(self.home)[0].get(name)
        try:
            return self._backend.get_password(self._service, name)
        except Exception as error:  # keyring backends raise their own errors (D-Bus, locked vaults, ...)
            raise KeychainError(f"cannot read {name!r} from {self.where()}: {_reason(error)}") from None

    def set(self, name: str, value: str) -> None:
        """Keep `value` as the secret `name`, replacing any earlier one. Raises KeychainError."""
        check_entry(name, value)
        with self._locked():
            self._set_unlocked(name, value)

    def delete(self, name: str) -> None:
        """Forget the secret `name` (nothing happens if it is absent). Raises KeychainError."""
        with self._locked():
            if self._backend is None:
                current, reason = _read_file(self.home)
                if current.pop(name, None) is not None:
                    _write_file(self.home, current, reason)
                return
            if self.get(name) is None:
                return
            try:
                self._backend.delete_password(self._service, name)
            except Exception as error:
                raise KeychainError(f"cannot delete {name!r} from {self.where()}: {_reason(error)}") from None

    def get_or_create(self, names: tuple[str, ...], make: Callable[[], tuple[str, ...]]) -> tuple[str, ...]:
        """Return the secrets `names`; when any is missing, make all of them with `make()` and keep them.
        Processes that ask at once get the same secrets. Raises KeychainError."""
        with self._locked():
            found = tuple(self.get(name) for name in names)
            if all(value is not None for value in found):
                return tuple(value for value in found if value is not None)
            made = make()
            for name, value in zip(names, made, strict=True):
                check_entry(name, value)
                self._set_unlocked(name, value)
            return made

    def _set_unlocked(self, name: str, value: str) -> None:
        if self._backend is None:
            current, reason = _read_file(self.home)
            _write_file(self.home, {**current, name: value}, reason or self.choice.reason)
            return
        _record_keyring(self.home)
        try:
            self._backend.set_password(self._service, name, value)
        except Exception as error:
            raise KeychainError(f"cannot store {name!r} in {self.where()}: {_reason(error)}") from None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the home's keychain lock: read-modify-write of the file, and making a key pair, happen
        in one process at a time."""
        import fcntl

        _ensure_private_dir(secrets_dir(self.home))
        with (secrets_dir(self.home) / ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def open_keychain(home: Home, backend: Backend | None = None) -> Keychain:
    """Return the home's keychain. `backend` replaces the system keyring (tests pass an in-memory one);
    $SHOPLIST_KEYRING (auto, file, system) says whether to use the keyring. Raises KeychainError when the
    place the home's secrets are in cannot be reached."""
    setting = parse_setting(os.environ.get(SETTING_ENV))
    recorded = _recorded(home)
    problem: str | None = None
    name = ""
    if backend is None and (recorded == "file" or (recorded is None and setting == "file")):
        problem = "not consulted"  # never import keyring (nor wake a desktop one) for a file home
    elif backend is None:
        backend, problem, name = _system_keyring()
    else:
        name = _backend_display_name(backend)
    if backend is not None and problem is None and recorded is None:
        # Choosing for good: the keyring must work now. A home already in it finds out at first use.
        problem = _probe(home, backend)
    recorded_reason = _read_file(home)[1] if recorded == "file" else ""
    choice = choose(setting, recorded, problem, recorded_reason)
    return Keychain(home, choice, backend if choice.kind == "keyring" else None, name)


def secrets_report(home: Home) -> SecretsReport:
    """Return where the home's secrets are (or why they cannot be reached), without raising."""
    try:
        keychain = open_keychain(home)
        keychain.get(DATABASE_PASSWORD)  # reached, not only configured
    except KeychainError as error:
        return SecretsReport(None, False, str(error))
    return SecretsReport(keychain.where(), keychain.is_fallback)


def client_keys(home: Home, backend: Backend | None = None) -> tuple[str, str]:
    """Return the home's CurveZMQ key pair (public, secret; z85 text, 40 characters each), made once with
    `zmq.curve_keypair()` and kept in the keychain. Raises KeychainError, also when a stored key is not
    a z85 key."""

    def make() -> tuple[str, ...]:
        import zmq

        public, secret = zmq.curve_keypair()
        return public.decode("ascii"), secret.decode("ascii")

    keychain = open_keychain(home, backend)
    public, secret = keychain.get_or_create((CLIENT_PUBLIC_KEY, CLIENT_SECRET_KEY), make)
    for name, key in ((CLIENT_PUBLIC_KEY, public), (CLIENT_SECRET_KEY, secret)):
        if not _is_z85_key(key):
            raise KeychainError(
                f"the {name} in {keychain.where()} is not a CurveZMQ key; remove it to make new ones"
            )
    return public, secret


# ----- which backend ------------------------------------------------------------------------------------


def _recorded(home: Home) -> Kind | None:
    """Return where this home already keeps secrets: the file, the keyring, or None (nowhere yet)."""
    if secrets_file(home).exists():
        return "file"
    if keyring_marker(home).exists():
        return "keyring"
    return None


def _system_keyring() -> tuple[Backend | None, str | None, str]:
    """Return the system keyring backend, why it cannot be used (None if it can), and its name."""
    try:
        import keyring
        from keyring.backends import chainer, fail, null
    except ImportError:
        return None, "the keyring package is not installed", ""
    try:
        backend = keyring.get_keyring()
    except Exception as error:
        return None, f"no keyring backend loads ({_reason(error)})", ""
    if isinstance(backend, fail.Keyring | null.Keyring) or (
        isinstance(backend, chainer.ChainerBackend) and not backend.backends
    ):
        return None, no_backend_problem(*_platform_backend_problem()), ""
    return backend, None, _backend_display_name(backend)


def _platform_backend_problem() -> tuple[str | None, str | None]:
    """Return the name of this platform's keyring backend and why it cannot be used (None, None when
    there is no such backend or it can be used): keyring itself only says that none is available."""
    place = platform_backend(sys.platform)
    if place is None:
        return None, None
    module_name, class_name = place
    name = display_name(module_name.rpartition(".")[2])
    try:
        backend_class = getattr(importlib.import_module(module_name), class_name)
        backend_class.priority  # noqa: B018 - raises, with the reason, where the backend cannot work
    except ImportError as error:  # a build without the backend: say so, it is not the system's fault
        return name, f"not in this build ({_reason(error)})"
    except Exception as error:
        return name, _reason(error)
    return None, None


def _probe(home: Home, backend: Backend) -> str | None:
    """Return why `backend` fails its first use (a read of this home's password), or None if it works."""
    try:
        backend.get_password(service_name(str(home.path)), DATABASE_PASSWORD)
    except Exception as error:
        return _reason(error)
    return None


def _backend_display_name(backend: Backend) -> str:
    name = getattr(backend, "name", None)
    return display_name(name if isinstance(name, str) else type(backend).__name__)


def _record_keyring(home: Home) -> None:
    marker = keyring_marker(home)
    if not marker.exists():
        _write_private(marker, KEYRING_MARKER_TEXT.encode("utf-8"))


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


# ----- the owner-only file ------------------------------------------------------------------------------


def _read_file(home: Home) -> tuple[dict[str, str], str]:
    """Return the fallback file's secrets ({} when it does not exist) and why the file was chosen.
    Raises KeychainError when it is exposed to other users, unreadable or damaged."""
    path = secrets_file(home)
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except (FileNotFoundError, NotADirectoryError):  # no file yet (or no home yet: it is made later)
        return {}, ""
    except OSError as error:
        raise KeychainError(f"cannot read {path}: {error.strerror}") from None
    with os.fdopen(descriptor, "rb") as stream:
        _check_private(path, os.fstat(stream.fileno()), "600")
        data = stream.read()
    return decode_file(data, str(path))


def _write_file(home: Home, secrets: dict[str, str], reason: str) -> None:
    _ensure_private_dir(secrets_dir(home))
    _write_private(secrets_file(home), encode_file(secrets, reason))


def _write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (a crash leaves the old file or the new one, never half of
    one), readable by the owner only."""
    _ensure_private_dir(path.parent)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        partial.replace(path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise KeychainError(f"cannot write {path}: {error.strerror}") from None


def _ensure_private_dir(path: Path) -> None:
    """Create `path` with mode 0700 if needed. Raises KeychainError if it is not a private directory."""
    try:
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700)
        info = path.lstat()
    except OSError as error:
        raise KeychainError(f"cannot create {path}: {error.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise KeychainError(f"{path} is not a directory")
    _check_private(path, info, "700")


def _check_private(path: Path, info: os.stat_result, mode: str) -> None:
    if os.getuid() != 0 and info.st_uid != os.getuid():
        raise KeychainError(f"{path} belongs to another user; its secrets are not used")
    if info.st_mode & 0o077:
        raise KeychainError(
            f"{path} can be read by other users (mode {stat.S_IMODE(info.st_mode):o}); its secrets may have"
            f" leaked: run `chmod {mode} {path}` and consider them known"
        )


def _is_z85_key(key: str) -> bool:
    if len(key) != Z85_KEY_LENGTH:
        return False
    import zmq.utils.z85

    try:
        zmq.utils.z85.decode(key)
    except (ValueError, KeyError):
        return False
    return True
