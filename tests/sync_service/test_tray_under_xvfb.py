"""The tray service for real: `shoplist-sync` (with Qt, not headless) on an Xvfb display whose system tray
is Debian's `trayer`. Its icon must be embedded in the tray, and another home's edit to a shared list
must put a notification on screen. A screenshot of both is saved; set SHOPLIST_SCREENSHOTS=DIR to keep it
(docs/screenshots/tray.png is made this way)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.sync_service.homes import HomeUnderTest, eventually, shared_list
from tests.x_display import Window, XDisplay, missing_tools, x_display_with_tray

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        bool(missing_tools()),
        reason=f"needs {', '.join(missing_tools())} (.ci/system-packages.sh installs them as root)",
    ),
]
SERVICE_CLASS = '"shoplist-sync"'


def _service_windows(windows: list[Window]) -> list[Window]:
    return [window for window in windows if SERVICE_CLASS in window.classes]


def _tray_icon(display: XDisplay) -> Window | None:
    """Return the service's icon window if it is embedded in trayer's panel and can be seen."""
    panel = display.tray_panel()
    if panel is None:
        return None
    icons = [window for window in _service_windows(list(panel.descendants())) if display.is_viewable(window)]
    return icons[0] if icons else None


def _notification_window(display: XDisplay) -> Window | None:
    """Return a top-level window of the service that can be seen: the notification balloon (the icon
    lives inside the panel, and the service opens no other window of its own)."""
    for window in _service_windows(display.top_level_windows()):
        if window.width > 1 and window.height > 1 and display.is_viewable(window):
            return window
    return None


def test_the_tray_icon_and_a_notification_of_another_homes_change_show_in_a_real_tray(
    make_home: Callable[[str], HomeUnderTest],
    services: list[subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    alice, bob = make_home("alice"), make_home("bob")
    list_id = shared_list(alice, bob, "Groceries")
    with x_display_with_tray(tmp_path) as display:
        on_display = display.environment(bob.environment())
        services.append(bob.start_sync_service(headless=False, environment=on_display))
        eventually(lambda: _tray_icon(display) is not None, "the icon appearing in the tray")
        with bob.store() as bob_store:
            eventually(lambda: bob.service_state(bob_store) == "synced", "bob's service syncing")
            assert _notification_window(display) is None
            assert alice.shoplist("add", "Groceries", "Eggs", "--needed", "6").code == 0
            assert alice.shoplist("add", "Groceries", "Milk", "--needed", "2").code == 0
            assert alice.shoplist("sync").code == 0
            eventually(lambda: "Eggs" in bob_store.load(list_id), "alice's edit reaching bob's store")
        eventually(lambda: _notification_window(display) is not None, "a notification showing")
        log = bob.sync_log.read_text()
        assert "tray icon shown" in log and "no system tray" not in log
        assert "Groceries: Added Eggs, Milk" in log
        screenshot = tmp_path / "tray.png"
        display.screenshot(screenshot, crop=(display.width - 320, 0, 320, 120))
    assert screenshot.read_bytes().startswith(b"\x89PNG")
    if os.environ.get("SHOPLIST_SCREENSHOTS"):
        shutil.copy(screenshot, Path(os.environ["SHOPLIST_SCREENSHOTS"]) / "tray.png")
