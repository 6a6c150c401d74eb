"""`shoplist-quickstart` (what `./run` runs) as a real process: it starts a local ring and the sync service
of a home, says when they are up, and SIGTERM stops every process it started."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from sync_service.home import Home
from sync_service.store import open_store
from tests.sync_service.conftest import REPO, cli_environment, stop_and_tidy

pytestmark = pytest.mark.timeout(300)
READY = "Sync service running for the home"


def test_quickstart_runs_the_ring_and_the_sync_service_and_sigterm_stops_every_child(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    environment = cli_environment(None)
    environment["SHOPLIST_CLUSTER_FILE"] = str(tmp_path / "cluster.json")
    command = [sys.executable, "-m", "sync_service.quickstart", "--no-window", "--home", str(home)]
    command += ["--cloud-data", str(tmp_path / "cloud")]
    with (tmp_path / "quickstart.log").open("wb") as log:
        process = subprocess.Popen(command, cwd=REPO, env=environment, stdout=subprocess.PIPE, stderr=log)
    assert process.stdout is not None
    children: list[psutil.Process] = []
    try:
        printed = []
        while not printed or READY not in printed[-1]:
            line = process.stdout.readline().decode()
            assert line, f"quickstart ended before it was ready: {printed}"
            printed.append(line)
        assert any(line.startswith("Ring ready; proxies tcp://") for line in printed)
        children = psutil.Process(process.pid).children(recursive=True)
        commands = [" ".join(child.cmdline()) for child in children]
        assert sum("cluster" in line for line in commands) == 1
        assert sum(" node " in line for line in commands) == 3
        assert sum(" proxy " in line for line in commands) == 2
        assert sum("--headless" in line and str(home) in line for line in commands) == 1
        with open_store(Home(home)) as store:
            assert store.sync_service_running()

        process.send_signal(signal.SIGTERM)
        assert process.wait(120) == 0
        assert process.stdout.read().decode().splitlines()[-1] == "Stopped."
        _, alive = psutil.wait_procs(children, timeout=30)
        assert alive == []
    finally:
        if process.poll() is None:
            process.kill()
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        stop_and_tidy(Home(home))
