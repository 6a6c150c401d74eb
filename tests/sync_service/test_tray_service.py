"""`shoplist-sync` as a process: one service per home (a second is refused, a killed one's claim goes at
once), and `--headless` runs the same engine without loading Qt at all, which keeps it small."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.sync_service.conftest import REPO
from tests.sync_service.homes import HomeUnderTest, eventually

HEADLESS_IMPORTS = """
import sys
from sync_service import cloud_link, syncer, tray_service
loaded = sorted(name for name in sys.modules if name.split(".")[0] in ("PySide6", "shiboken6", "qasync"))
print(",".join(loaded))
"""

NO_CLOUD = "tcp://127.0.0.1:9?key=rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
"""A proxy endpoint (with a pinned key) where nothing listens: the cloud is unreachable."""


def test_the_headless_service_never_imports_qt() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", HEADLESS_IMPORTS], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert completed.stdout.strip() == ""


def test_a_second_service_for_one_home_is_refused_until_the_first_dies(
    database_factory: Callable[[], str], tmp_path: Path, services: list[subprocess.Popen[bytes]]
) -> None:
    home = HomeUnderTest(tmp_path / "home", database_factory(), [NO_CLOUD])  # no cloud: offline
    with home.store() as store:
        services.append(home.start_sync_service())
        eventually(store.sync_service_running, "the first service claiming the home")
        second = subprocess.run(
            [sys.executable, "-m", "sync_service.tray_service", "--headless", "--home", str(home.path)],
            capture_output=True,
            text=True,
            cwd=REPO,
            env=home.environment(),
            timeout=120,
            check=False,
        )
        assert second.returncode != 0
        assert second.stderr.strip() == f"shoplist-sync: a sync service already runs for the home {home.path}"
        services[0].kill()
        services[0].wait(30)
        eventually(lambda: not store.sync_service_running(), "the killed service's claim being released")


def test_with_qt_but_no_system_tray_the_service_says_so_once_and_keeps_syncing_and_says_where_secrets_are(
    database_factory: Callable[[], str], tmp_path: Path, services: list[subprocess.Popen[bytes]]
) -> None:
    home = HomeUnderTest(tmp_path / "home", database_factory(), [NO_CLOUD])
    environment = {**home.environment(), "QT_QPA_PLATFORM": "offscreen"}  # Qt runs; no tray exists
    with home.store() as store:
        store.create("Groceries")
        services.append(home.start_sync_service(headless=False, environment=environment))
        eventually(lambda: home.service_state(store) == "offline", "the service reporting its state")
    assert services[0].poll() is None
    log = home.sync_log.read_text()
    assert log.count("this desktop has no system tray; syncing on without an icon") == 1
    assert log.count("WARNING shoplist.sync: secrets: not in a keyring but in an owner-only file") == 1
