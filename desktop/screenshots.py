"""Renders the window with a realistic list, in light and dark, to PNG files (docs/screenshots/).

Run under a display, e.g. `xvfb-run -s "-screen 0 1280x900x24" python -m desktop.screenshots`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from sync_service import postgres_server
from sync_service.home import Home
from sync_service.store import Store, SyncStatus, open_store

GROCERIES = [
    ("Bananas", 6, 0, "Produce", ""),
    ("Avocados", 2, 2, "Produce", ""),
    ("Baby spinach", 1, 0, "Produce", "bag"),
    ("Cherry tomatoes", 2, 0, "Produce", "pack"),
    ("Lemons", 3, 0, "Produce", ""),
    ("Milk", 2, 2, "Dairy", "l"),
    ("Eggs", 12, 0, "Dairy", ""),
    ("Greek yogurt", 1, 0, "Dairy", "kg"),
    ("Butter", 1, 0, "Dairy", ""),
    ("Sourdough loaf", 1, 1, "Bakery", ""),
    ("Flour", 2, 0, "Pantry", "kg"),
    ("Olive oil", 1, 0, "Pantry", "bottle"),
    ("Spaghetti", 2, 0, "Pantry", "pack"),
    ("Coffee beans", 1, 0, "Pantry", "bag"),
    ("Dish soap", 1, 0, "", ""),
    ("Birthday candles", 1, 0, "", ""),
]
NOTES = {"Eggs": "free range", "Coffee beans": "medium roast", "Birthday candles": "for Saturday"}
OTHER_LISTS = {
    "Weekend BBQ": ["Charcoal", "Corn on the cob", "Sausages", "Burger buns", "Lemonade"],
    "Hardware store": ["Wood screws", "Sandpaper", "Light bulbs"],
    "Pharmacy": ["Plasters", "Sun cream"],
}


def fill(store: Store) -> str:
    """Write the example lists into an empty store; return the id of the one to show."""
    groceries = store.create("Groceries").id
    for name, needed, acquired, category, unit in GROCERIES:
        store.set_item(
            groceries, name, needed, acquired, category=category, unit=unit, note=NOTES.get(name, "")
        )
    for title, names in OTHER_LISTS.items():
        list_id = store.create(title).id
        for name in names:
            store.add_item(list_id, name, 1)
        if title == "Weekend BBQ":
            store.mark_shared(list_id)
    return groceries


def _notice_already_shown(home: Home) -> None:
    """Keep the one-time notice about the secrets file out of the pictures."""
    from desktop.settings import SECRETS_NOTICE_KEY, window_settings
    from sync_service.keychain import secrets_report

    settings = window_settings(home)
    settings.setValue(SECRETS_NOTICE_KEY, secrets_report(home).where)
    settings.sync()


def main(argv: Sequence[str] | None = None) -> int:
    """Render the screenshots; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m desktop.screenshots", description=__doc__)
    parser.add_argument("--out", default="docs/screenshots", help="where the PNG files go")
    arguments = parser.parse_args(argv)
    out = Path(arguments.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ["SHOPLIST_KEYRING"] = "file"  # a throwaway home: never the desktop's keyring
    with tempfile.TemporaryDirectory(prefix="shoplist-screenshots-") as folder:
        home = Home(Path(folder) / "home")
        service = open_store(home)  # holds the sync service's claim, as a running tray would
        _notice_already_shown(home)
        try:
            fill(service)
            service.claim_sync_service()
            service.record_sync_status(SyncStatus("synced", 0, "connected"))
            for scheme in ("light", "dark"):
                _render(home, scheme, out / f"window-{scheme}.png")
            print(f"wrote {out}/window-light.png, window-dark.png and help-dark.png")
        finally:
            service.close()
            postgres_server.stop(home)
    return 0


def _render(home: Home, scheme: str, path: Path) -> None:
    import qasync
    from PySide6.QtCore import QItemSelectionModel
    from PySide6.QtWidgets import QApplication

    from desktop.app import create_window
    from desktop.main_window import MainWindow
    from desktop.theme import apply_theme

    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    apply_theme(app, scheme)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)

    async def shoot() -> None:
        window = create_window(home)
        assert isinstance(window, MainWindow)
        window.resize(1040, 660)
        while window.controller.state != "ready" or not window.controller.items_model.item_count():
            await asyncio.sleep(0.05)
        while window.sync_label.text() != "Synced":
            await asyncio.sleep(0.05)
        eggs = window.filter_model.mapFromSource(window.controller.items_model.index_of("Eggs"))
        window.items_view.selectionModel().setCurrentIndex(
            eggs, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        )
        window.quick_add.setFocus()
        await asyncio.sleep(0.3)  # let the window paint once more before the grab
        window.grab().save(str(path))
        if scheme == "dark":
            window.show_help()
            await asyncio.sleep(0.3)
            assert window.help_dialog is not None
            window.help_dialog.grab().save(str(path.with_name("help-dark.png")))
        window.close()

    with loop:
        loop.run_until_complete(shoot())


if __name__ == "__main__":
    sys.exit(main())
