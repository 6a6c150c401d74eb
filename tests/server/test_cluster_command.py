"""The command lines `shoplist-server cluster` starts its nodes and proxies with, from source or frozen."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from server.cluster import node_command, server_program


def test_from_source_a_node_runs_as_this_python_with_the_module() -> None:
    command = node_command("n1", "tcp://127.0.0.1:7101", "tcp://127.0.0.1:7102", Path("/data/n1"), [], "INFO")
    assert command[:3] == [sys.executable, "-m", "server.cli"]
    assert command[3:7] == ["--log-level", "INFO", "node", "--id"]
    assert command[-7:] == [
        "--publish",
        "tcp://127.0.0.1:7102",
        "--data",
        "/data/n1",
        "--seeds",
        "",
        "--insecure",
    ]


def test_with_a_key_directory_a_node_gets_its_own_secret_key_and_the_members_file() -> None:
    command = node_command("n3", "tcp://a:1", "tcp://a:2", Path("/d"), [], "INFO", Path("/keys"))
    assert command[-4:] == ["--key", "/keys/n3.key_secret", "--members", "/keys/members"]


def test_in_a_frozen_bundle_a_node_runs_as_the_bundle_executable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", "/opt/shoplist/shoplist-server")
    assert server_program() == ["/opt/shoplist/shoplist-server"]
    command = node_command("n2", "tcp://a:1", "tcp://a:2", Path("/d"), ["tcp://b:1"], "DEBUG")
    assert command[:4] == ["/opt/shoplist/shoplist-server", "--log-level", "DEBUG", "node"]
