"""A local `shoplist-server cluster --nodes 3 --proxies 2` for the benchmarks, stopped when they finish."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def local_cluster(data: Path, *, insecure: bool = False) -> Iterator[dict[str, Any]]:
    """Run a 3-node, 2-proxy cluster with its data and log in `data` (CurveZMQ, or plain text when
    `insecure`); yield its ready line. Raises SystemExit, naming the log, when the cluster exits before
    it is ready."""
    log = (data / "cluster.log").open("wb")
    command = [
        sys.executable,
        "-m",
        "server.cli",
        "cluster",
        "--nodes",
        "3",
        "--proxies",
        "2",
        "--data",
        str(data),
        *(["--insecure"] if insecure else []),
    ]
    environment = {**os.environ, "SHOPLIST_CLUSTER_FILE": str(data / "cluster.json")}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, env=environment)
    assert process.stdout is not None
    try:
        line = process.stdout.readline()
        if not line:
            raise SystemExit(f"the cluster did not start; see {data / 'cluster.log'}")
        yield json.loads(line)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(120)
        log.close()
