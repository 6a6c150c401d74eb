"""The selected list's items as a Qt tree model: one group per category, items to get first and items
got (acquired all that is needed) last, each group by name; in-place edits are asked for, not made."""

from __future__ import annotations

import bisect
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
_NO_PARENT = QModelIndex()
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
    return sorted(groups.values(), key=_group_key)


def _group_key(group: _Group) -> tuple[bool, str]:
    """Named categories alphabetically; uncategorised items last, under "Other"."""
    return (not group.category, group.category.casefold())


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

    def show_item(self, name: str, item: ItemView | None) -> None:
        """Show one item as it now is (None: gone), ahead of the next full refresh: rows are moved,
        inserted or removed one at a time, so this costs little even in a list of 5,000."""
        wanted = " ".join(name.split()).casefold()
        found = self._locate(wanted)
        if found is not None:
            group_row, row = found
            group = self._groups[group_row]
            if item is not None and item.category.casefold() == group.category.casefold():
                rest = group.items[:row] + group.items[row + 1 :]
                if bisect.bisect_left(rest, _sort_key(item), key=_sort_key) == row:
                    group.items[row] = item  # stays where it is
                    parent = self.index(group_row, 0)
                    self.dataChanged.emit(
                        self.index(row, 0, parent), self.index(row, len(COLUMNS) - 1, parent)
                    )
                    return
            self._remove_row(group_row, row)
        if item is not None:
            self._insert_row(item)

    def _locate(self, key: str) -> tuple[int, int] | None:
        for group_row, group in enumerate(self._groups):
            for row, known in enumerate(group.items):
                if known.name.casefold() == key:
                    return group_row, row
        return None

    def _remove_row(self, group_row: int, row: int) -> None:
        group = self._groups[group_row]
        if len(group.items) == 1:
            self.beginRemoveRows(QModelIndex(), group_row, group_row)
            del self._groups[group_row]
            self.endRemoveRows()
            return
        self.beginRemoveRows(self.index(group_row, 0), row, row)
        del group.items[row]
        self.endRemoveRows()
        self._group_changed(group_row)

    def _insert_row(self, item: ItemView) -> None:
        folded = item.category.casefold()
        group_row = next(
            (number for number, group in enumerate(self._groups) if group.category.casefold() == folded), None
        )
        if group_row is None:
            fresh = _Group(item.category, [item])
            group_row = bisect.bisect_left(self._groups, _group_key(fresh), key=_group_key)
            self.beginInsertRows(QModelIndex(), group_row, group_row)
            self._groups.insert(group_row, fresh)
            self.endInsertRows()
            return
        group = self._groups[group_row]
        row = bisect.bisect_left(group.items, _sort_key(item), key=_sort_key)
        self.beginInsertRows(self.index(group_row, 0), row, row)
        group.items.insert(row, item)
        self.endInsertRows()
        self._group_changed(group_row)

    def _group_changed(self, group_row: int) -> None:
        self.dataChanged.emit(self.index(group_row, 0), self.index(group_row, len(COLUMNS) - 1))

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

    def index(self, row: int, column: int, parent: Index = _NO_PARENT) -> QModelIndex:
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

    def parent(self, index: Index = _NO_PARENT) -> QModelIndex:  # type: ignore[override]
        if not index.isValid() or index.internalId() == _ROOT:
            return QModelIndex()
        return self.createIndex(index.internalId() - 1, 0, _ROOT)

    def rowCount(self, parent: Index = _NO_PARENT) -> int:
        if not parent.isValid():
            return len(self._groups)
        if parent.internalId() == _ROOT and parent.column() == 0:
            return len(self._groups[parent.row()].items)
        return 0

    def columnCount(self, parent: Index = _NO_PARENT) -> int:
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
