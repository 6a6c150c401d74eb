"""The rule that a proxy endpoint must pin the proxy's key, in the client and in the commands."""

from __future__ import annotations

import pytest

from sync_service.client import CloudClient, InsecureEndpointError
from sync_service.errors import UsageError
from sync_service.proxies import ProxyChoice, require_pinned_keys

KEY = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"


def test_an_endpoint_without_a_key_is_refused_unless_insecure_mode_is_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SHOPLIST_INSECURE", raising=False)
    with pytest.raises(InsecureEndpointError, match=r"\?key=.*SHOPLIST_INSECURE=1"):
        CloudClient(["tcp://127.0.0.1:5555"])
    CloudClient([f"tcp://127.0.0.1:5555?key={KEY}"]).close()
    CloudClient(["tcp://127.0.0.1:5555"], insecure=True).close()
    monkeypatch.setenv("SHOPLIST_INSECURE", "1")
    CloudClient(["tcp://127.0.0.1:5555"]).close()


def test_commands_refuse_a_configured_proxy_without_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHOPLIST_INSECURE", raising=False)
    choice = ProxyChoice(("tcp://shop.example.org:5555",), "$SHOPLIST_PROXIES")
    with pytest.raises(UsageError, match=r"\$SHOPLIST_PROXIES.*no \?key="):
        require_pinned_keys(choice)
    require_pinned_keys(ProxyChoice((f"tcp://shop.example.org:5555?key={KEY}",), "x"))
    monkeypatch.setenv("SHOPLIST_INSECURE", "1")
    require_pinned_keys(choice)
