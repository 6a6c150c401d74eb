"""Paints a sidebar row: the list's title, its item count on the right, and a mark on shared lists."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QPainter, QPalette
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from desktop.lists_model import COUNT_ROLE, SHARED_ROLE

SHARED_MARK = "⇄"  # two arrows: edits go both ways
ROW_PADDING = 6


class ListRowDelegate(QStyledItemDelegate):
    """Title left; "⇄" (shared) and the count right, in the muted text colour."""

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        count = index.data(COUNT_ROLE)
        shared = bool(index.data(SHARED_ROLE))
        trailing = f"{SHARED_MARK}  {count}" if shared else f"{count}"
        options = QStyleOptionViewItem(option)
        self.initStyleOption(options, index)
        options.text = ""
        style = options.widget.style() if options.widget else None
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, options, painter, options.widget)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        muted = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.PlaceholderText
        area = option.rect.adjusted(ROW_PADDING + 4, 0, -ROW_PADDING - 4, 0)
        metrics = option.fontMetrics
        trailing_width = metrics.horizontalAdvance(trailing) + 12
        painter.save()
        painter.setPen(option.palette.color(muted))
        painter.drawText(area, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, trailing)
        painter.setPen(option.palette.color(role))
        title_area = QRect(area.left(), area.top(), max(area.width() - trailing_width, 0), area.height())
        title = metrics.elidedText(str(index.data() or ""), Qt.TextElideMode.ElideRight, title_area.width())
        painter.drawText(title_area, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, title)
        painter.restore()

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        size = super().sizeHint(option, index)
        return QSize(size.width(), max(size.height(), option.fontMetrics.height() + 2 * ROW_PADDING + 4))
