"""`shoplist-server proxy` options for the limits: shown in --help, nonsense refused before starting."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROXY = [sys.executable, "-m", "server.cli", "proxy", "--bind", "tcp://127.0.0.1:1", "--publish"]
PROXY += ["tcp://127.0.0.1:2", "--seeds", "tcp://127.0.0.1:3", "--insecure"]


def test_help_lists_every_limit_with_its_default() -> None:
    shown = subprocess.run([*PROXY[:4], "--help"], capture_output=True, text=True, timeout=60, check=True)
    for option in ("--rate", "--burst", "--rate-table", "--max-topics", "--client-hwm"):
        assert option in shown.stdout
    assert "(default 200)" in shown.stdout


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        (["--rate", "0"], "expected a number above 0, got 0"),
        (["--max-topics", "many"], "expected a number, got 'many'"),
        (["--burst", "0.5"], "--burst must be at least 1"),
    ],
)
def test_a_nonsense_limit_is_refused_with_exit_code_2(arguments: list[str], complaint: str) -> None:
    result = subprocess.run([*PROXY, *arguments], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert complaint in result.stderr
