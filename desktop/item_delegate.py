"""Editors for in-place item edits: whole-number spin boxes for quantities, plain fields for the rest,
each letting the window's undo and redo keys through."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, QSize
from PySide6.QtWidgets import QLineEdit, QSpinBox, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from desktop.items_model import COLUMNS, QUANTITY_COLUMNS
from desktop.shortcuts import WindowKeysFirst

MAX_QUANTITY = 1_000_000
ROW_PADDING = 5  # above and below the text of each row


class ItemEditorDelegate(QStyledItemDelegate):
    """Creates the cell editors of the items view."""

    def __init__(self, keys_first: WindowKeysFirst, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._keys_first = keys_first

    def createEditor(
        self, parent: QWidget, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QWidget:
        editor: QWidget
        if index.column() in QUANTITY_COLUMNS:
            spin = QSpinBox(parent)
            spin.setRange(0, MAX_QUANTITY)
            editor = spin
        else:
            editor = QLineEdit(parent)
        editor.setAccessibleName(f"Edit {COLUMNS[index.column()].lower()}")
        editor.installEventFilter(self._keys_first)
        return editor

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        size = super().sizeHint(option, index)
        return QSize(size.width(), max(size.height(), option.fontMetrics.height() + 2 * ROW_PADDING))
