"""The selected list's items as a Qt tree model: one group per category, items to get first and items
got (acquired all that is needed) last, each group by name; in-place edits are asked for, not made."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import QApplication

from crdt import ItemView

COLUMNS = ("Item", "Needed", "Got", "Unit", "Category", "Note")
NAME, NEEDED, ACQUIRED, UNIT, CATEGORY, NOTE = range(len(COLUMNS))
QUANTITY_COLUMNS = (NEEDED, ACQUIRED)
_FIELD_OF_COLUMN = {NEEDED: "needed", ACQUIRED: "acquired", UNIT: "unit", CATEGORY: "category", NOTE: "note"}
UNCATEGORISED = "Other"
ITEM_ROLE = Qt.ItemDataRole.UserRole + 1  # the ItemView of an item row (None on a group row)
GROUP_ROLE = Qt.ItemDataRole.UserRole + 2  # True on a group row

Index = QModelIndex | QPersistentModelIndex
_ROOT = 0  # internalId of a group row; an item row's is its group's row + 1
_GROUP_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
_NAME_FLAGS = _GROUP_FLAGS | Qt.ItemFlag.ItemIsUserCheckable
_CELL_FLAGS = _GROUP_FLAGS | Qt.ItemFlag.ItemIsEditable


def is_done(item: ItemView) -> bool:
    """Return whether the item is got: something was needed and all of it was acquired."""
    return item.needed > 0 and item.acquired >= item.needed


def _sort_key(item: ItemView) -> tuple[bool, str, str]:
    return (is_done(item), item.name.casefold(), item.name)


@dataclass
class _Group:
    category: str
    items: list[ItemView] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.category or UNCATEGORISED


def _group(items: list[ItemView]) -> list[_Group]:
    groups: dict[str, _Group] = {}
    for item in items:
        key = item.category.casefold()
        groups.setdefault(key, _Group(item.category)).items.append(item)
    for group in groups.values():
        group.items.sort(key=_sort_key)
    # Named categories alphabetically; uncategorised items last, under "Other".
    return sorted(groups.values(), key=lambda group: (not group.category, group.category.casefold()))


class ItemsModel(QAbstractItemModel):
    """Items grouped by category. `set_items` replaces them (keeping what it can, so a refresh after a
    small change does not reset the view); `edit_requested(name, changes)` asks for an edit whose
    changes map field names (needed, acquired, unit, category, note) to new values."""

    edit_requested = Signal(str, dict)

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._groups: list[_Group] = []

    # ----- content ----------------------------------------------------------------------------------

    def set_items(self, items: list[ItemView]) -> None:
        """Show `items`. When only quantities or details of the same items changed in place, the rows
        stay (dataChanged); otherwise the model resets once."""
        groups = _group(items)
        if self._same_shape(groups):
            self._groups = groups
            for row, group in enumerate(groups):
                if group.items:
                    parent = self.index(row, 0)
                    self.dataChanged.emit(
                        self.index(0, 0, parent), self.index(len(group.items) - 1, len(COLUMNS) - 1, parent)
                    )
            if groups:
                self.dataChanged.emit(self.index(0, 0), self.index(len(groups) - 1, len(COLUMNS) - 1))
            return
        self.beginResetModel()
        self._groups = groups
        self.endResetModel()

    def _same_shape(self, groups: list[_Group]) -> bool:
        if len(groups) != len(self._groups):
            return False
        for new, old in zip(groups, self._groups, strict=True):
            if new.category != old.category or len(new.items) != len(old.items):
                return False
            if any(a.name != b.name for a, b in zip(new.items, old.items, strict=True)):
                return False
        return True

    def item_count(self) -> int:
        """Return how many items are shown."""
        return sum(len(group.items) for group in self._groups)

    def items(self) -> list[ItemView]:
        """Return every item, in display order."""
        return [item for group in self._groups for item in group.items]

    def find(self, name: str) -> ItemView | None:
        """Return the item called `name` (any case or spacing), or None."""
        wanted = " ".join(name.split()).casefold()
        return next((item for item in self.items() if item.name.casefold() == wanted), None)

    def index_of(self, name: str) -> QModelIndex:
        """Return the index of the item row called `name` (column 0), or an invalid index."""
        wanted = " ".join(name.split()).casefold()
        for group_row, group in enumerate(self._groups):
            for row, item in enumerate(group.items):
                if item.name.casefold() == wanted:
                    return self.createIndex(row, 0, group_row + 1)
        return QModelIndex()

    def item_at(self, index: Index) -> ItemView | None:
        """Return the item at `index`, or None for a group row or an invalid index."""
        if not index.isValid() or index.internalId() == _ROOT:
            return None
        return self._groups[index.internalId() - 1].items[index.row()]

    # ----- the Qt model interface ------------------------------------------------------------------

    def index(self, row: int, column: int, parent: Index = QModelIndex()) -> QModelIndex:
        if column < 0 or column >= len(COLUMNS) or row < 0:
            return QModelIndex()
        if not parent.isValid():
            return self.createIndex(row, column, _ROOT) if row < len(self._groups) else QModelIndex()
        if parent.internalId() != _ROOT:
            return QModelIndex()
        group_row = parent.row()
        if row >= len(self._groups[group_row].items):
            return QModelIndex()
        return self.createIndex(row, column, group_row + 1)

    def parent(self, index: Index = QModelIndex()) -> QModelIndex:  # type: ignore[override]
        if not index.isValid() or index.internalId() == _ROOT:
            return QModelIndex()
        return self.createIndex(index.internalId() - 1, 0, _ROOT)

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        if not parent.isValid():
            return len(self._groups)
        if parent.internalId() == _ROOT and parent.column() == 0:
            return len(self._groups[parent.row()].items)
        return 0

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.TextAlignmentRole:
            return _alignment(section)
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        if index.internalId() == _ROOT:
            return _GROUP_FLAGS
        return _NAME_FLAGS if index.column() == NAME else _CELL_FLAGS

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        if index.internalId() == _ROOT:
            return self._group_data(self._groups[index.row()], index.column(), role)
        item = self._groups[index.internalId() - 1].items[index.row()]
        return self._item_data(item, index.column(), role)

    def _group_data(self, group: _Group, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and column == NAME:
            return f"{group.label}  ·  {len(group.items)}"
        if role == Qt.ItemDataRole.AccessibleTextRole and column == NAME:
            return f"{group.label}, {len(group.items)} items"
        if role == Qt.ItemDataRole.FontRole:
            font = QFont()
            font.setBold(True)
            return font
        if role == GROUP_ROLE:
            return True
        return None

    def _item_data(self, item: ItemView, column: int, role: int) -> Any:
        done = is_done(item)
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            return _cell(item, column)
        if role == Qt.ItemDataRole.CheckStateRole and column == NAME:
            return Qt.CheckState.Checked if done else Qt.CheckState.Unchecked
        if role == Qt.ItemDataRole.AccessibleTextRole and column == NAME:
            return f"{item.name}, {item.acquired} of {item.needed}{' got' if done else ''}"
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return _alignment(column)
        if role == Qt.ItemDataRole.FontRole and done:
            font = QFont()
            font.setStrikeOut(column == NAME)
            return font
        if role == Qt.ItemDataRole.ForegroundRole and done:
            return QApplication.palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
        if role == Qt.ItemDataRole.ForegroundRole and column == CATEGORY:  # the group says it already
            return QApplication.palette().color(QPalette.ColorRole.PlaceholderText)
        if role == ITEM_ROLE:
            return item
        if role == GROUP_ROLE:
            return False
        return None

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        item = self.item_at(index)
        if item is None:
            return False
        if role == Qt.ItemDataRole.CheckStateRole and index.column() == NAME:
            checked = Qt.CheckState(value) == Qt.CheckState.Checked
            self.edit_requested.emit(item.name, {"acquired": item.needed if checked else 0})
            return True
        if role != Qt.ItemDataRole.EditRole or index.column() not in _FIELD_OF_COLUMN:
            return False
        field_name = _FIELD_OF_COLUMN[index.column()]
        new_value: int | str = int(value) if index.column() in QUANTITY_COLUMNS else str(value).strip()
        if new_value == getattr(item, field_name):
            return False
        self.edit_requested.emit(item.name, {field_name: new_value})
        return True


def _cell(item: ItemView, column: int) -> Any:
    if column == NAME:
        return item.name
    if column == NEEDED:
        return item.needed
    if column == ACQUIRED:
        return item.acquired
    return getattr(item, _FIELD_OF_COLUMN[column])


def _alignment(column: int) -> Qt.AlignmentFlag:
    if column in QUANTITY_COLUMNS:
        return Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
    return Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
