"""Where the app's icons and sibling programs are, in a checkout, an installed package or a frozen bundle."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ICONS_ENV = "SHOPLIST_ICONS"


def icon_dirs() -> list[Path]:
    """Return the folders that may hold the icons, most specific first."""
    candidates = []
    if os.environ.get(ICONS_ENV):
        candidates.append(Path(os.environ[ICONS_ENV]))
    bundle = getattr(sys, "_MEIPASS", None)  # set by a PyInstaller bundle
    if bundle:
        candidates.append(Path(bundle) / "icons")
    candidates.append(Path(__file__).resolve().parent.parent / "icons")  # a checkout or editable install
    candidates.append(Path(sys.prefix) / "share" / "shoplist" / "icons")
    return candidates


def icon_path(file_name: str) -> Path | None:
    """Return the first existing icon file called `file_name` (e.g. "tray-synced.svg"), or None."""
    for folder in icon_dirs():
        path = folder / file_name
        if path.is_file():
            return path
    return None


# macOS: the tray service's own app (no Dock icon) nests in the window's app as a login item.
MACOS_HELPER_APP = "Shoplist Sync.app"


def find_program(name: str) -> str | None:
    """Return the path of the Shoplist program `name` (e.g. "shoplist-desktop"): the executable beside this
    one (a frozen bundle's sibling, or a console script in the same virtual environment), else the one on
    PATH, else None. In a macOS app, the nested tray helper app comes first and the outer app last, so the
    tray service always runs as the helper and the window is found from either."""
    here = Path(sys.executable).parent
    folders = [here]
    if here.name == "MacOS" and here.parent.name == "Contents":
        helper = here.parent / "Library" / "LoginItems" / MACOS_HELPER_APP / "Contents" / "MacOS"
        outer = here.parents[4] / "MacOS" if len(here.parents) > 4 else None
        folders = [helper, here] + ([outer] if outer and here.parents[2].name == "LoginItems" else [])
    beside = os.pathsep.join([*map(str, folders), os.environ.get("PATH", "")])
    return shutil.which(name, path=beside)


def program_command(name: str, module: str) -> list[str]:
    """Return the command that runs the program `name`: its executable if found, else `python -m module`."""
    found = find_program(name)
    return [found] if found else [sys.executable, "-m", module]
