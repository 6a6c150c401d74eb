"""Light and dark palettes for the window, following the system's colour scheme unless told otherwise."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QProxyStyle, QStyle, QStyleOption, QWidget

THEME_ENV = "SHOPLIST_THEME"  # "light" or "dark" overrides the system's choice
ACCENT = QColor("#2e7d5b")  # the green of the app icon

_LIGHT = {
    QPalette.ColorRole.Window: "#f4f5f4",
    QPalette.ColorRole.WindowText: "#1d2320",
    QPalette.ColorRole.Base: "#ffffff",
    QPalette.ColorRole.AlternateBase: "#f3f6f4",
    QPalette.ColorRole.Text: "#1d2320",
    QPalette.ColorRole.Button: "#eceeed",
    QPalette.ColorRole.ButtonText: "#1d2320",
    QPalette.ColorRole.ToolTipBase: "#ffffff",
    QPalette.ColorRole.ToolTipText: "#1d2320",
    QPalette.ColorRole.PlaceholderText: "#7a827e",
    QPalette.ColorRole.Highlight: "#2e7d5b",
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.Link: "#1f6a4a",
    QPalette.ColorRole.Light: "#ffffff",
    QPalette.ColorRole.Midlight: "#e3e6e4",
    QPalette.ColorRole.Mid: "#c9cecb",
    QPalette.ColorRole.Dark: "#a9b0ac",
    QPalette.ColorRole.Shadow: "#7d8581",
}

_DARK = {
    QPalette.ColorRole.Window: "#1f2322",
    QPalette.ColorRole.WindowText: "#e4e8e6",
    QPalette.ColorRole.Base: "#292f2d",
    QPalette.ColorRole.AlternateBase: "#2c3230",
    QPalette.ColorRole.Text: "#e4e8e6",
    QPalette.ColorRole.Button: "#2e3432",
    QPalette.ColorRole.ButtonText: "#e4e8e6",
    QPalette.ColorRole.ToolTipBase: "#2e3432",
    QPalette.ColorRole.ToolTipText: "#e4e8e6",
    QPalette.ColorRole.PlaceholderText: "#8d9692",
    QPalette.ColorRole.Highlight: "#3f9b73",
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.Link: "#7fd1ab",
    QPalette.ColorRole.Light: "#4a524f",
    QPalette.ColorRole.Midlight: "#3d4542",
    QPalette.ColorRole.Mid: "#4f5854",
    QPalette.ColorRole.Dark: "#5d6763",
    QPalette.ColorRole.Shadow: "#121514",
}

_DISABLED_TEXT = {"light": "#9aa29e", "dark": "#6f7874"}


class ShoplistStyle(QProxyStyle):
    """Fusion with roomier text margins in item views, so adjacent columns never run together."""

    def pixelMetric(
        self, metric: QStyle.PixelMetric, option: QStyleOption | None = None, widget: QWidget | None = None
    ) -> int:
        if metric == QStyle.PixelMetric.PM_FocusFrameHMargin:
            return 6
        return super().pixelMetric(metric, option, widget)


def wanted_scheme() -> str:
    """Return "dark" or "light": $SHOPLIST_THEME if set, else what the system's style hints say."""
    forced = os.environ.get(THEME_ENV, "").strip().lower()
    if forced in ("light", "dark"):
        return forced
    scheme = QGuiApplication.styleHints().colorScheme()
    return "dark" if scheme == Qt.ColorScheme.Dark else "light"


def apply_theme(app: QApplication, scheme: str | None = None) -> str:
    """Give `app` the Fusion style with the palette of `scheme` (default: `wanted_scheme()`); return it."""
    chosen = scheme or wanted_scheme()
    app.setStyle(ShoplistStyle("Fusion"))
    palette = QPalette()
    for role, colour in (_DARK if chosen == "dark" else _LIGHT).items():
        palette.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(_DISABLED_TEXT[chosen]))
    app.setPalette(palette)
    return chosen


def follow_system_theme(app: QApplication) -> None:
    """Apply the theme now and again whenever the system switches between light and dark."""
    apply_theme(app)
    QGuiApplication.styleHints().colorSchemeChanged.connect(lambda _scheme: apply_theme(app))
