"""Which cloud proxies a home talks to: $SHOPLIST_PROXIES, else the ones set with `shoplist config
proxies`, else the ones a local `shoplist-server cluster` published — zero configuration for a quick start."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from protocol.local_cluster import local_cluster_file
from sync_service.errors import UsageError
from sync_service.home import Home

PROXIES_ENV = "SHOPLIST_PROXIES"
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
