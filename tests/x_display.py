"""A real X display with a system tray for tests and screenshots: Xvfb, Debian's `trayer` as the tray,
window queries through `xwininfo`, and screenshots grabbed by Qt in a process of its own on that display."""

from __future__ import annotations

import ctypes.util
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

TOOLS = ("Xvfb", "trayer", "xwininfo")
# What Qt's xcb platform plugin loads beyond libxcb itself (Qt does not ship them).
QT_XCB_LIBRARIES = (
    *("xcb-cursor", "xcb-icccm", "xcb-keysyms", "xcb-image", "xcb-render-util"),
    *("xcb-shape", "xcb-randr", "xcb-xkb", "xkbcommon-x11"),
)
START_SECONDS = 30.0
XVFB_OPTIONS = ("-nolisten", "tcp", "-wr")  # -wr: a white root window, like an empty desktop
TRAYER_OPTIONS = (
    *("--edge", "top", "--align", "right", "--widthtype", "request", "--height", "32"),
    *("--transparent", "false", "--tint", "0xd8d8d8", "--SetDockType", "true"),
)

# One line of `xwininfo -root -tree`:  0x400007 "name": ("instance" "class")  22x30+0+0  +777+1
_WINDOW_LINE = re.compile(
    r"^(?P<indent>\s*)(?P<id>0x[0-9a-f]+) (?:\"(?P<name>.*)\"|\(has no name\)): \((?P<classes>.*)\)"
    r"\s+(?P<width>\d+)x(?P<height>\d+)\+-?\d+\+-?\d+\s+\+(?P<x>-?\d+)\+(?P<y>-?\d+)"
)

_GRAB = """
import sys
from PySide6.QtCore import QRect
from PySide6.QtGui import QGuiApplication
app = QGuiApplication(["shoplist-screenshot"])
shot = app.primaryScreen().grabWindow(0)
if len(sys.argv) > 2:
    shot = shot.copy(QRect(*map(int, sys.argv[2].split(","))))
sys.exit(0 if shot.save(sys.argv[1], "PNG") else 1)
"""


def missing_tools() -> list[str]:
    """Return the programs and libraries this module needs that are not installed
    (`.ci/system-packages.sh` installs them)."""
    programs = [tool for tool in TOOLS if shutil.which(tool) is None]
    return programs + [f"lib{name}" for name in QT_XCB_LIBRARIES if ctypes.util.find_library(name) is None]


@dataclass
class Window:
    """One X window as `xwininfo` lists it, with the windows inside it."""

    id: str
    name: str
    classes: str
    width: int
    height: int
    x: int
    y: int
    children: list[Window] = field(default_factory=list)

    def descendants(self) -> Iterator[Window]:
        """Yield every window inside this one, depth first."""
        for child in self.children:
            yield child
            yield from child.descendants()


@dataclass
class XDisplay:
    """A running Xvfb display with trayer's system tray on it."""

    name: str
    width: int
    height: int

    def environment(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Return `base` (default: ours) set up for Qt programs on this display."""
        environment = dict(os.environ if base is None else base)
        environment.update({"DISPLAY": self.name, "QT_QPA_PLATFORM": "xcb"})
        for variable in ("WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS"):
            environment.pop(variable, None)  # no session bus: Qt uses the X11 (XEmbed) tray
        return environment

    def top_level_windows(self) -> list[Window]:
        """Return the root window's children, each with its subtree."""
        output = subprocess.run(
            ["xwininfo", "-root", "-tree", "-display", self.name],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
        root = Window("root", "", "", self.width, self.height, 0, 0)
        stack: list[tuple[int, Window]] = [(-1, root)]
        for line in output.splitlines():
            match = _WINDOW_LINE.match(line)
            if match is None:
                continue
            window = Window(
                match["id"],
                match["name"] or "",
                match["classes"],
                int(match["width"]),
                int(match["height"]),
                int(match["x"]),
                int(match["y"]),
            )
            depth = len(match["indent"])
            while stack[-1][0] >= depth:
                stack.pop()
            stack[-1][1].children.append(window)
            stack.append((depth, window))
        return root.children

    def is_viewable(self, window: Window) -> bool:
        """Return whether `window` is mapped and all its ancestors are (so it can be seen)."""
        output = subprocess.run(
            ["xwininfo", "-id", window.id, "-display", self.name],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        ).stdout
        return "Map State: IsViewable" in output

    def tray_panel(self) -> Window | None:
        """Return trayer's panel, the window tray icons are embedded in, once it exists."""
        for window in self.top_level_windows():
            if window.name == "panel" and '"trayer"' in window.classes:
                return window
        return None

    def screenshot(self, path: Path, crop: tuple[int, int, int, int] | None = None) -> None:
        """Save the screen (or the `crop` rectangle: x, y, width, height) as a PNG at `path`."""
        arguments = [sys.executable, "-c", _GRAB, str(path)]
        if crop is not None:
            arguments.append(",".join(map(str, crop)))
        subprocess.run(arguments, env=self.environment(), check=True, timeout=60, capture_output=True)


@contextmanager
def x_display_with_tray(log_dir: Path, width: int = 640, height: int = 360) -> Iterator[XDisplay]:
    """Run Xvfb (white root window) with trayer docked at the top right until the block ends."""
    read_end, write_end = os.pipe()
    log = (log_dir / "x-display.log").open("ab")
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), "-screen", "0", f"{width}x{height}x24", *XVFB_OPTIONS],
        pass_fds=(write_end,),
        stdout=log,
        stderr=log,
    )
    os.close(write_end)
    tray: subprocess.Popen[bytes] | None = None
    try:
        with os.fdopen(read_end) as announced:
            number = announced.readline().strip()
        if not number:
            raise RuntimeError(f"Xvfb did not start; see {log_dir / 'x-display.log'}")
        display = XDisplay(f":{number}", width, height)
        tray = subprocess.Popen(
            ["trayer", *TRAYER_OPTIONS],
            env=display.environment(),
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + START_SECONDS
        while display.tray_panel() is None:
            if tray.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"trayer did not start; see {log_dir / 'x-display.log'}")
            time.sleep(0.05)
        yield display
    finally:
        for process in (tray, server):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(30)
        log.close()
