"""A smoke run of bench/fuzz_live.py: a few thousand hostile messages at a real local cluster leave every
process up, the lists intact and the cluster writable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(300)

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_a_quick_live_fuzz_run_passes_every_check() -> None:
    run = subprocess.run(
        [sys.executable, str(BENCH / "fuzz_live.py"), "--quick", "--messages", "2000", "--seed", "7"],
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "crashes: 0;" in run.stdout
    assert "lists intact: 4 of 4" in run.stdout
    assert "result: PASS" in run.stdout
