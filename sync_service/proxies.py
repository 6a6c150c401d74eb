"""Which cloud proxies a home talks to: $SHOPLIST_PROXIES, else the ones set with `shoplist config
proxies`, else the ones a local `shoplist-server cluster` published — zero configuration for a quick start."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from protocol.endpoints import split_endpoint
from protocol.local_cluster import local_cluster_file
from sync_service.errors import UsageError
from sync_service.home import Home

PROXIES_ENV = "SHOPLIST_PROXIES"
INSECURE_ENV = "SHOPLIST_INSECURE"
ENDPOINT = re.compile(r"tcp://[A-Za-z0-9.\-\[\]:]+:\d{1,5}(\?key=[0-9A-Za-z.\-:+=^!/*?&<>()\[\]{}@%$#]{40})?")


@dataclass(frozen=True)
class ProxyChoice:
    """The endpoints to use and where they came from (for `shoplist status` and error messages)."""

    endpoints: tuple[str, ...]
    source: str


def parse_endpoints(text: str | list[str]) -> tuple[str, ...]:
    """Return the endpoints in a comma-separated string or a list. Raises UsageError on a bad one."""
    parts = text.split(",") if isinstance(text, str) else text
    endpoints = tuple(part.strip() for part in parts if part.strip())
    for endpoint in endpoints:
        if not ENDPOINT.fullmatch(endpoint):
            raise UsageError(f"{endpoint!r} is not a proxy endpoint like tcp://127.0.0.1:5555")
    return endpoints


def choose_proxies(home: Home) -> ProxyChoice:
    """Return the proxies this home should use (possibly none, when nothing is configured)."""
    if os.environ.get(PROXIES_ENV):
        return ProxyChoice(parse_endpoints(os.environ[PROXIES_ENV]), f"${PROXIES_ENV}")
    saved = _read_json(home.proxies_file)
    if isinstance(saved, list) and saved:
        return ProxyChoice(parse_endpoints([str(entry) for entry in saved]), str(home.proxies_file))
    published = _read_json(local_cluster_file(os.environ))
    if isinstance(published, dict) and isinstance(published.get("proxies"), list):
        return ProxyChoice(
            parse_endpoints([str(entry) for entry in published["proxies"]]), "the local cluster"
        )
    return ProxyChoice((), "nothing configured")


def require_pinned_keys(choice: ProxyChoice) -> None:
    """Raise UsageError when an endpoint carries no `?key=` (its proxy could not be authenticated),
    unless $SHOPLIST_INSECURE=1 allows plain text."""
    if os.environ.get(INSECURE_ENV) == "1":
        return
    for endpoint in choice.endpoints:
        if split_endpoint(endpoint)[1] is None:
            raise UsageError(
                f"the proxy {endpoint} (from {choice.source}) carries no ?key=<its public key>, so it cannot"
                " be authenticated: use the endpoint exactly as the cluster printed it, e.g."
                f" {endpoint}?key=..., or set {INSECURE_ENV}=1 for a plain-text cluster"
            )


def save_proxies(home: Home, endpoints: tuple[str, ...]) -> None:
    """Make `endpoints` this home's proxies (an empty tuple goes back to the defaults)."""
    home.prepare()
    if not endpoints:
        home.proxies_file.unlink(missing_ok=True)
        return
    temporary = home.proxies_file.with_suffix(".tmp")
    temporary.write_text(json.dumps(list(endpoints)) + "\n")
    temporary.replace(home.proxies_file)


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
