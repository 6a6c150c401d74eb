"""`shoplist-desktop [--home DIR]`: the window. It shows at once and opens the store in the background."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from sync_service.errors import ShoplistError
from sync_service.home import Home, resolve_home

log = logging.getLogger("shoplist.desktop")


def build_parser() -> argparse.ArgumentParser:
    """Return the command line parser."""
    parser = argparse.ArgumentParser(prog="shoplist-desktop", description="The Shoplist window.")
    parser.add_argument("--home", metavar="DIR", help="the local replica to open (default: $SHOPLIST_HOME)")
    parser.add_argument("--verbose", action="store_true", help="log what the window does")
    return parser


def create_window(home: Home) -> object:
    """Build the controller and the window for `home` (a QApplication must exist) and start opening
    the store; return the window, shown."""
    from desktop.list_controller import ListController
    from desktop.main_window import MainWindow
    from desktop.settings import window_settings

    controller = ListController(home, window_settings(home))
    window = MainWindow(controller)
    window.show()
    controller.start()
    return window


def main(argv: Sequence[str] | None = None) -> int:
    """Run the window until it is closed; return the exit code."""
    arguments = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if arguments.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        home = resolve_home(arguments.home)
        home.prepare()
    except ShoplistError as error:
        print(f"shoplist-desktop: {error}", file=sys.stderr)
        return 1

    import qasync
    from PySide6.QtWidgets import QApplication

    from desktop.theme import follow_system_theme

    app = QApplication(sys.argv[:1])
    app.setApplicationName("Shoplist")
    app.setApplicationDisplayName("Shoplist")
    app.setDesktopFileName("shoplist")
    follow_system_theme(app)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    closed = asyncio.Event()
    app.lastWindowClosed.connect(closed.set)
    with loop:
        window = create_window(home)
        loop.run_until_complete(closed.wait())
        del window
    return 0


if __name__ == "__main__":
    sys.exit(main())
