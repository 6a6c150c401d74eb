"""A real local cloud for tests: `shoplist-server cluster` as a process, and its proxies' processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from protocol.endpoints import address_of, with_key
from server.keys import KeyPair, load_secret


@dataclass
class RunningCluster:
    """A cluster process, what its ready line said, and where its data and log are."""

    process: subprocess.Popen[bytes]
    proxies: list[str]
    nodes: list[dict[str, Any]]
    data: Path

    @property
    def admin(self) -> KeyPair:
        """The member key the cluster made for its tools: nodes admit it."""
        return load_secret(self.data / "keys" / "admin.key_secret")

    def node(self, index: int) -> str:
        """Return node `index`'s request endpoint with its pinned key."""
        return with_key(self.nodes[index]["endpoint"], self.nodes[index]["key"])

    def proxy_pids(self) -> list[int]:
        """Return the pids of the proxy processes, in the order of `proxies`."""
        children = psutil.Process(self.process.pid).children(recursive=True)
        by_port = {}
        for child in children:
            command = child.cmdline()
            if "proxy" in command and "--bind" in command:
                by_port[command[command.index("--bind") + 1]] = child.pid
        return [by_port[address_of(endpoint)] for endpoint in self.proxies]


@contextmanager
def running_cluster(data: Path, *, nodes: int = 3, proxies: int = 2) -> Iterator[RunningCluster]:
    """Run `shoplist-server cluster` until the block ends, then stop it with SIGTERM."""
    log = (data / "cluster.log").open("wb")
    command = [
        sys.executable,
        "-m",
        "server.cli",
        "cluster",
        "--nodes",
        str(nodes),
        "--proxies",
        str(proxies),
    ]
    environment = {**os.environ, "SHOPLIST_CLUSTER_FILE": str(data / "published.json")}
    process = subprocess.Popen(
        [*command, "--data", str(data)], stdout=subprocess.PIPE, stderr=log, env=environment
    )
    assert process.stdout is not None
    try:
        line = process.stdout.readline()
        assert line, f"the cluster exited before it was ready; see {data / 'cluster.log'}"
        ready = json.loads(line)
        yield RunningCluster(process, ready["proxies"], ready["nodes"], data)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(120)
        finally:
            log.close()
