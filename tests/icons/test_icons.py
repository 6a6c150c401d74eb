"""The committed icon sources and rendered files: SVGs parse, every PNG has its size, containers are valid."""

from __future__ import annotations

import importlib.util
import struct
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

ICONS_DIR = Path(__file__).resolve().parents[2] / "icons"
SVG_NAMESPACE = "{http://www.w3.org/2000/svg}"
SVG_SOURCES = ("shoplist", "tray-synced", "tray-syncing", "tray-offline", "tray-error")
APP_SIZES = (16, 20, 24, 32, 48, 64, 128, 256, 512)
TRAY_SIZES = (16, 22, 24, 32, 48, 64)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def expected_pngs() -> dict[str, int]:
    """The same list `icons/render.py` writes, spelled out so that a dropped size fails here."""
    files = {f"shoplist-{size}.png": size for size in APP_SIZES}
    for name in SVG_SOURCES[1:]:
        files.update({f"{name}-{size}.png": size for size in TRAY_SIZES})
    return files


def png_dimensions(path: Path) -> tuple[int, int]:
    """Read width and height from the IHDR chunk, which the PNG format requires to come first."""
    header = path.read_bytes()[:24]
    assert header[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    assert header[12:16] == b"IHDR", f"{path.name} does not start with an IHDR chunk"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


@pytest.mark.parametrize("name", SVG_SOURCES)
def test_every_svg_source_is_an_svg_document_with_a_view_box(name: str) -> None:
    root = ElementTree.parse(ICONS_DIR / f"{name}.svg").getroot()
    assert root.tag == f"{SVG_NAMESPACE}svg"
    min_x, min_y, width, height = (float(part) for part in root.attrib["viewBox"].split())
    assert (min_x, min_y) == (0, 0)
    assert width == height > 0


@pytest.mark.parametrize(("file_name", "size"), sorted(expected_pngs().items()))
def test_every_rendered_png_exists_at_its_pixel_size(file_name: str, size: int) -> None:
    assert png_dimensions(ICONS_DIR / "png" / file_name) == (size, size)


def test_png_folder_holds_only_the_listed_sizes() -> None:
    present = {path.name for path in (ICONS_DIR / "png").glob("*.png")}
    assert present == set(expected_pngs())


def test_render_script_writes_the_same_pngs_this_test_expects() -> None:
    # render.py imports Qt and Pillow only when it renders, so loading it here needs neither.
    spec = importlib.util.spec_from_file_location("icons_render", ICONS_DIR / "render.py")
    assert spec is not None and spec.loader is not None
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    assert render.expected_pngs() == expected_pngs()


def test_windows_ico_has_its_magic_and_every_size_up_to_256() -> None:
    data = (ICONS_DIR / "shoplist.ico").read_bytes()
    reserved, kind, count = struct.unpack("<HHH", data[:6])
    assert (reserved, kind) == (0, 1)
    # Directory entries store the edge length in one byte, with 0 meaning 256.
    sizes = sorted(data[6 + 16 * index] or 256 for index in range(count))
    assert sizes == [16, 20, 24, 32, 48, 64, 128, 256]


def test_macos_icns_has_its_magic_and_its_stated_length() -> None:
    data = (ICONS_DIR / "shoplist.icns").read_bytes()
    magic, length = struct.unpack(">4sI", data[:8])
    assert magic == b"icns"
    assert length == len(data)
    entry_types = set()
    offset = 8
    while offset < len(data):
        entry_type, entry_length = struct.unpack(">4sI", data[offset : offset + 8])
        entry_types.add(entry_type)
        offset += entry_length
    # 128, 256, 512 and 512@2x (1024) are the entries Finder and the Dock use.
    assert {b"ic07", b"ic08", b"ic09", b"ic10"} <= entry_types
