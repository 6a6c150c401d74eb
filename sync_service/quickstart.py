"""`shoplist-quickstart` (what `./run` runs): a whole local Shoplist on one machine — a 3-node ring with
2 proxies from `shoplist-server cluster`, the sync service, and the desktop window — stopped together."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from sync_service.errors import ShoplistError
from sync_service.home import Home, resolve_home
from sync_service.proxies import PROXIES_ENV
from sync_service.resources import find_program, program_command
from sync_service.store import Store, open_store

CLAIM_WAIT_SECONDS = 0.5

CLI_HINT = """No display here, so no window: use the command line in another terminal, for example
  {shoplist} new Groceries
  {shoplist} add Groceries Eggs --needed 6
  {shoplist} share Groceries      # prints a code others can `shoplist join`
  {shoplist} status
Press Ctrl+C to stop the ring and the sync service."""


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of `shoplist-quickstart`."""
    parser = argparse.ArgumentParser(prog="shoplist-quickstart", description=__doc__)
    parser.add_argument("--home", help="the local replica's directory (default: $SHOPLIST_HOME or per user)")
    parser.add_argument("--cloud-data", help="where the local ring keeps its data (default: per user)")
    parser.add_argument("--no-window", action="store_true", help="run the ring and sync only (no display)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Start everything, wait for the window to close (or Ctrl+C), then stop everything."""
    arguments = build_parser().parse_args(argv)
    home = resolve_home(arguments.home)
    cloud_data = Path(arguments.cloud_data) if arguments.cloud_data else _default_cloud_data()
    cloud_data.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, lambda *_: stop.set())
    started: list[subprocess.Popen[bytes]] = []
    try:
        print(f"Starting a local ring (3 nodes, 2 proxies) with its data in {cloud_data} ...", flush=True)
        ring = ["cluster", "--nodes", "3", "--proxies", "2", "--data", str(cloud_data)]
        cluster = _start("shoplist-server", "server.cli", ring, stdout=subprocess.PIPE)
        started.append(cluster)
        proxies = _wait_for_ready_line(cluster)
        print(f"Ring ready; proxies {', '.join(proxies)}", flush=True)
        window = not arguments.no_window and _has_display()
        with _open_home_store(home) as store:
            sync_arguments = ["--home", str(home.path)] + ([] if window else ["--headless"])
            # The ring's proxies are handed over directly: its published ready file may not be written yet.
            proxies_environment = {**os.environ, PROXIES_ENV: ",".join(proxies)}
            service = _start(
                "shoplist-sync", "sync_service.tray_service", sync_arguments, proxies_environment
            )
            started.append(service)
            _wait_for_claim(service, store, stop)
        print(f"Sync service running for the home {home.path}", flush=True)
        if window and find_program("shoplist-desktop"):
            started.append(_start("shoplist-desktop", "desktop.app", ["--home", str(home.path)]))
            print("Window open. Close it (or press Ctrl+C) to stop everything.", flush=True)
            _wait_for(started[-1], stop)
        else:
            shoplist = ".venv/bin/shoplist" + (f" --home {home.path}" if arguments.home else "")
            print(CLI_HINT.format(shoplist=shoplist), flush=True)
            _wait_for(cluster, stop)
    except _StartFailed as error:
        print(f"shoplist-quickstart: {error}", file=sys.stderr)
        return 1
    finally:
        _stop(list(reversed(started)))
    print("Stopped.", flush=True)
    return 0


class _StartFailed(Exception):
    """A part did not start."""


def _start(
    script: str,
    module: str,
    arguments: list[str],
    environment: dict[str, str] | None = None,
    stdout: int | None = None,
) -> subprocess.Popen[bytes]:
    """Start a part by its console script, or as `python -m module` when the script is not installed."""
    command = [*program_command(script, module), *arguments]
    return subprocess.Popen(command, stdout=stdout, stdin=subprocess.DEVNULL, env=environment)


def _open_home_store(home: Home) -> Store:
    """Open the home's store (starting its PostgreSQL) before the sync service needs it."""
    try:
        return open_store(home)
    except ShoplistError as error:
        raise _StartFailed(f"the local store did not start: {error}") from None


def _wait_for_claim(service: subprocess.Popen[bytes], store: Store, stop: threading.Event) -> None:
    """Return once the sync service holds the home's claim (it is up and syncing). Its first status
    record notifies the store, which wakes the wait; the timeout is for noticing that it died."""
    store.listen()
    while not store.sync_service_running():
        if service.poll() is not None:
            raise _StartFailed("the sync service stopped; its log is above")
        if stop.is_set():
            raise _StartFailed("stopped before the sync service was up")
        store.wait_for_change(CLAIM_WAIT_SECONDS)


def _wait_for_ready_line(cluster: subprocess.Popen[bytes]) -> list[str]:
    assert cluster.stdout is not None
    line = cluster.stdout.readline()
    if not line:
        raise _StartFailed("the local ring did not start; its log is above")
    proxies: list[str] = json.loads(line)["proxies"]
    return proxies


def _wait_for(process: subprocess.Popen[bytes], stop: threading.Event) -> None:
    while not stop.is_set() and process.poll() is None:
        stop.wait(0.5)


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()


def _has_display() -> bool:
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _default_cloud_data() -> Path:
    import platformdirs

    return platformdirs.user_data_path("shoplist-cloud", appauthor=False)


if __name__ == "__main__":
    raise SystemExit(main())
