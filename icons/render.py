"""Render the SVG icon sources into the PNG sizes, .ico and .icns files the installers ship.

Run from anywhere: `python icons/render.py` (needs the `package` extra: PySide6 and Pillow).
`--preview PATH` also writes a contact sheet of every icon at tray sizes, on a light and a dark panel,
magnified with nearest-neighbour so single pixels can be judged.

The output is deterministic: the same sources and library versions give byte-identical files.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

ICONS_DIR = Path(__file__).resolve().parent
PNG_DIR = ICONS_DIR / "png"

APP_ICON = "shoplist"
APP_SIZES = (16, 20, 24, 32, 48, 64, 128, 256, 512)
TRAY_ICONS = ("tray-synced", "tray-syncing", "tray-offline", "tray-error")
TRAY_SIZES = (16, 22, 24, 32, 48, 64)

# Windows picks the closest entry per context (title bar 16-24, taskbar 32-48, Explorer up to 256).
ICO_SIZES = (16, 20, 24, 32, 48, 64, 128, 256)
# Pillow's ICNS writer stores PNG entries for 32, 64, 128, 256, 512 and 1024 px (ic07-ic14).
ICNS_SIZES = (32, 64, 128, 256, 512, 1024)

PREVIEW_SIZES = (16, 22, 32)
PREVIEW_BACKGROUNDS = ((0xF0, 0xF0, 0xF0, 0xFF), (0x20, 0x20, 0x20, 0xFF))
PREVIEW_ZOOM = 4


def expected_pngs() -> dict[str, int]:
    """Return every PNG this script writes, as file name -> edge length in pixels."""
    files = {f"{APP_ICON}-{size}.png": size for size in APP_SIZES}
    for name in TRAY_ICONS:
        files.update({f"{name}-{size}.png": size for size in TRAY_SIZES})
    return files


def _import_libraries() -> tuple[Any, Any, Any, Any]:
    """Import Qt and Pillow, or exit with a message saying how to install them."""
    try:
        from PIL import Image
        from PySide6.QtCore import QByteArray
        from PySide6.QtGui import QGuiApplication, QImage, QPainter
        from PySide6.QtSvg import QSvgRenderer
    except ImportError as error:
        sys.exit(
            f"icons/render.py needs PySide6 (QtSvg) and Pillow: {error}.\n"
            "Install them with: .venv/bin/pip install -e '.[package]'"
        )
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    application = QGuiApplication.instance() or QGuiApplication([])
    return application, Image, (QByteArray, QImage, QPainter), QSvgRenderer


class Rasteriser:
    """Turns an SVG file into Pillow RGBA images at any square size, with Qt's SVG renderer."""

    def __init__(self) -> None:
        self._application, self._image_module, qt_classes, self._renderer_class = _import_libraries()
        self._byte_array, self._qimage, self._painter = qt_classes

    def render(self, svg_path: Path, size: int) -> Any:
        """Return the icon as a `PIL.Image` in RGBA mode, `size` x `size` pixels.

        Raises `SystemExit` when the SVG does not parse.
        """
        renderer = self._renderer_class(self._byte_array(svg_path.read_bytes()))
        if not renderer.isValid():
            sys.exit(f"{svg_path} is not a valid SVG document")
        canvas = self._qimage(size, size, self._qimage.Format.Format_ARGB32_Premultiplied)
        canvas.fill(0)
        painter = self._painter(canvas)
        painter.setRenderHint(self._painter.RenderHint.Antialiasing)
        painter.setRenderHint(self._painter.RenderHint.SmoothPixmapTransform)
        renderer.render(painter)
        painter.end()
        rgba = canvas.convertToFormat(self._qimage.Format.Format_RGBA8888)
        pixels = bytes(rgba.constBits())[: size * size * 4]
        return self._image_module.frombytes("RGBA", (size, size), pixels)


def _save_png(image: Any, path: Path) -> None:
    image.save(path, format="PNG", optimize=True)
    print(f"wrote {path.relative_to(ICONS_DIR.parent)} ({image.width}x{image.height})")


def render_all(rasteriser: Rasteriser) -> None:
    """Write every PNG size, then the .ico and .icns built from the app icon."""
    PNG_DIR.mkdir(exist_ok=True)
    app_svg = ICONS_DIR / f"{APP_ICON}.svg"
    for size in APP_SIZES:
        _save_png(rasteriser.render(app_svg, size), PNG_DIR / f"{APP_ICON}-{size}.png")
    for name in TRAY_ICONS:
        for size in TRAY_SIZES:
            _save_png(rasteriser.render(ICONS_DIR / f"{name}.svg", size), PNG_DIR / f"{name}-{size}.png")

    # Each container entry is rendered from the vector source at its own size, not scaled from another.
    ico_images = [rasteriser.render(app_svg, size) for size in ICO_SIZES]
    ico_path = ICONS_DIR / f"{APP_ICON}.ico"
    ico_images[-1].save(ico_path, format="ICO", sizes=[(s, s) for s in ICO_SIZES], append_images=ico_images)
    print(f"wrote {ico_path.relative_to(ICONS_DIR.parent)} ({', '.join(map(str, ICO_SIZES))} px)")

    icns_images = [rasteriser.render(app_svg, size) for size in ICNS_SIZES]
    icns_path = ICONS_DIR / f"{APP_ICON}.icns"
    icns_images[-1].save(icns_path, format="ICNS", append_images=icns_images[:-1])
    print(f"wrote {icns_path.relative_to(ICONS_DIR.parent)} ({', '.join(map(str, ICNS_SIZES))} px)")


def render_preview(rasteriser: Rasteriser, path: Path) -> None:
    """Write a sheet: one row per icon, one light and one dark panel, each size magnified."""
    image_module = rasteriser._image_module
    names = (APP_ICON, *TRAY_ICONS)
    gap = 8
    cell = max(PREVIEW_SIZES) * PREVIEW_ZOOM + gap
    panel_width = cell * len(PREVIEW_SIZES) + gap
    sheet = image_module.new("RGBA", (panel_width * len(PREVIEW_BACKGROUNDS), cell * len(names) + gap))
    for panel, background in enumerate(PREVIEW_BACKGROUNDS):
        tile = image_module.new("RGBA", (panel_width, sheet.height), background)
        sheet.paste(tile, (panel * panel_width, 0))
        for row, name in enumerate(names):
            for column, size in enumerate(PREVIEW_SIZES):
                icon = rasteriser.render(ICONS_DIR / f"{name}.svg", size)
                on_panel = image_module.new("RGBA", icon.size, background)
                on_panel.alpha_composite(icon)
                zoomed = on_panel.resize(
                    (size * PREVIEW_ZOOM, size * PREVIEW_ZOOM), image_module.Resampling.NEAREST
                )
                sheet.paste(zoomed, (panel * panel_width + gap + column * cell, gap + row * cell))
    sheet.save(path, format="PNG")
    print(f"wrote {path} (rows: {', '.join(names)}; columns: {PREVIEW_SIZES} px, light then dark)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preview", type=Path, help="also write a magnified contact sheet to this path")
    arguments = parser.parse_args(argv)
    rasteriser = Rasteriser()
    render_all(rasteriser)
    if arguments.preview:
        render_preview(rasteriser, arguments.preview)
    return 0


if __name__ == "__main__":
    sys.exit(main())
