"""The home's own CurveZMQ client key pair, made on first use and kept in an owner-only file."""

from __future__ import annotations

import json
import os

import zmq

from protocol.endpoints import is_key
from sync_service.errors import EnvironmentProblem
from sync_service.home import Home

KEY_FILE = "client-key"


def client_keys(home: Home) -> tuple[str, str]:
    """Return the home's client key pair (public, secret) as Z85 text, creating it on first use. Raises
    EnvironmentProblem when the file cannot be read or written, or is not a key pair (it is never
    replaced: a damaged file is the user's to look at)."""
    path = home.path / KEY_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = None
    except OSError as error:
        raise EnvironmentProblem(f"cannot read the client key {path}: {error.strerror}") from None
    if text is not None:
        return _parse(text, str(path))
    home.prepare()
    public, secret = (half.decode("ascii") for half in zmq.curve_keypair())
    temporary = path.with_name(f".{KEY_FILE}.{os.getpid()}")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(json.dumps({"public": public, "secret": secret}) + "\n")
        os.link(temporary, path)  # appears whole or not at all; fails if another process was first
    except FileExistsError:
        return client_keys(home)  # another process of this home made it first: use theirs
    except OSError as error:
        raise EnvironmentProblem(f"cannot write the client key {path}: {error.strerror}") from None
    finally:
        temporary.unlink(missing_ok=True)
    return public, secret


def _parse(text: str, where: str) -> tuple[str, str]:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not is_key(value.get("public")) or not is_key(value.get("secret")):
        raise EnvironmentProblem(f"{where} is not a client key pair; move it away to make a new one")
    return str(value["public"]), str(value["secret"])
