"""`shoplist-sync`: the background sync service of one home, with a tray icon (or `--headless`, or where no
tray exists, without one). Runs in the foreground; autostart entries and service managers start it."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from sync_service.change_summary import Notification
from sync_service.errors import ShoplistError
from sync_service.home import Home, resolve_home
from sync_service.proxies import choose_proxies, require_pinned_keys
from sync_service.store import Store, SyncStatus, open_store

log = logging.getLogger("shoplist.sync")


class AlreadyRunning(ShoplistError):
    """Another sync service runs for this home."""


class NoCloudConfigured(ShoplistError):
    """No proxy endpoint is known."""


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of `shoplist-sync`."""
    parser = argparse.ArgumentParser(prog="shoplist-sync", description="Keep a home's lists in sync.")
    parser.add_argument("--home", help="the local replica's directory (default: $SHOPLIST_HOME or per user)")
    parser.add_argument("--headless", action="store_true", help="no tray icon: log instead (for servers)")
    parser.add_argument("--verbose", action="store_true", help="log every sync step")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sync service until quit (tray menu, SIGINT or SIGTERM); return the exit code."""
    arguments = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if arguments.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    home = resolve_home(arguments.home)
    try:
        claim = _claim(home)
        proxies = choose_proxies(home)
        if not proxies.endpoints:
            raise NoCloudConfigured(
                "no cloud to sync with: set SHOPLIST_PROXIES, run `shoplist config proxies URL...`,"
                " or start a local one with `shoplist-server cluster`"
            )
        require_pinned_keys(proxies)
    except ShoplistError as error:
        print(f"shoplist-sync: {error}", file=sys.stderr)
        return error.exit_code
    log.info("syncing home %s with %s (from %s)", home.path, ", ".join(proxies.endpoints), proxies.source)
    _log_secrets(home)
    try:
        if arguments.headless:
            return _run_headless(home, proxies.endpoints)
        return _run_with_tray(home, proxies.endpoints)
    finally:
        claim.close()


def _log_secrets(home: Home) -> None:
    """Say once, at start, where the home's secrets are: a warning when not in a keyring."""
    from sync_service.keychain import secrets_report

    report = secrets_report(home)
    if report.problem is not None or report.fallback:
        log.warning("secrets: %s", report.line().removeprefix("warning: "))
    else:
        log.info("secrets: %s", report.line())


def _claim(home: Home) -> Store:
    """Open the store and become the home's one sync service; the returned store holds the claim."""
    store = open_store(home)
    if not store.claim_sync_service():
        store.close()
        raise AlreadyRunning(f"a sync service already runs for the home {home.path}")
    return store


def _make_syncer(home: Home, endpoints: Sequence[str], **callbacks: Any) -> tuple[Any, Any]:
    from sync_service.cloud_link import CloudLink
    from sync_service.keychain import client_keys
    from sync_service.syncer import Syncer

    link = CloudLink(endpoints, keys=client_keys(home))
    return Syncer(lambda: open_store(home), link, **callbacks), link


def _run_headless(home: Home, endpoints: Sequence[str]) -> int:
    async def run() -> None:
        syncer, link = _make_syncer(home, endpoints, on_status=_log_status, on_notification=_log_notification)
        loop = asyncio.get_running_loop()
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signal_number, syncer.stop)
        try:
            await syncer.run()
        finally:
            link.close()

    asyncio.run(run())
    log.info("stopped")
    return 0


def _run_with_tray(home: Home, endpoints: Sequence[str]) -> int:
    import qasync
    from PySide6.QtWidgets import QApplication

    from sync_service import autostart
    from sync_service.tray import SyncTray, TrayState, TrayStatus, tray_available

    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv)
    app.setApplicationName("shoplist-sync")  # names its windows (WM_CLASS) for window managers and tests
    app.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    tray = SyncTray(autostart_enabled=autostart.is_enabled())
    if tray_available():
        tray.show()
        log.info("tray icon shown")
    else:
        log.warning("this desktop has no system tray; syncing on without an icon")

    def show(status: SyncStatus) -> None:
        _log_status(status)
        tray.show_status(TrayStatus(TrayState(status.state), status.pending, status.detail))

    def notify(notification: Notification) -> None:
        _log_notification(notification)
        tray.notify(notification)

    syncer, link = _make_syncer(home, endpoints, on_status=show, on_notification=notify)
    tray.sync_requested.connect(syncer.sync_now)
    tray.pause_toggled.connect(lambda paused: syncer.pause() if paused else syncer.resume())
    tray.quit_requested.connect(syncer.stop)
    tray.open_window_requested.connect(lambda: _open_window(home))
    tray.autostart_toggled.connect(lambda enabled: _set_autostart(enabled, home))
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, lambda *_: loop.call_soon_threadsafe(syncer.stop))
    try:
        with loop:
            loop.run_until_complete(syncer.run())
    finally:
        link.close()
        tray.hide()
    return 0


def _open_window(home: Home) -> None:
    from sync_service.resources import program_command

    command = program_command("shoplist-desktop", "desktop.app")
    subprocess.Popen([*command, "--home", str(home.path)], start_new_session=True)


def _set_autostart(enabled: bool, home: Home) -> None:
    from sync_service import autostart

    if enabled:
        from sync_service.resources import program_command

        command = program_command("shoplist-sync", "sync_service.tray_service")
        where = autostart.enable([*command, "--home", str(home.path)])
        log.info("starts at login now (%s)", where)
    else:
        autostart.disable()
        log.info("no longer starts at login")


def _log_status(status: SyncStatus) -> None:
    log.info("%s, %d change(s) pending; %s", status.state, status.pending, status.detail)


def _log_notification(notification: Notification) -> None:
    log.info("%s: %s", notification.title, notification.message)


if __name__ == "__main__":
    raise SystemExit(main())
