"""The home's lists as a Qt list model for the sidebar: title, item count and whether it is shared."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt

from sync_service.store import ListSummary

ID_ROLE = Qt.ItemDataRole.UserRole + 1
COUNT_ROLE = Qt.ItemDataRole.UserRole + 2
SHARED_ROLE = Qt.ItemDataRole.UserRole + 3

Index = QModelIndex | QPersistentModelIndex
_NO_PARENT = QModelIndex()


class ListsModel(QAbstractListModel):
    """Lists in the store's order (by title, ignoring case). `set_lists` keeps rows when only counts or
    titles changed in place, so the selection survives a refresh."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._lists: list[ListSummary] = []

    def set_lists(self, lists: list[ListSummary]) -> None:
        """Show `lists`."""
        if [summary.id for summary in lists] == [summary.id for summary in self._lists]:
            self._lists = list(lists)
            if lists:
                self.dataChanged.emit(self.index(0), self.index(len(lists) - 1))
            return
        self.beginResetModel()
        self._lists = list(lists)
        self.endResetModel()

    def lists(self) -> list[ListSummary]:
        """Return the lists shown."""
        return list(self._lists)

    def summary(self, list_id: str) -> ListSummary | None:
        """Return the list with this id, or None."""
        return next((summary for summary in self._lists if summary.id == list_id), None)

    def row_of(self, list_id: str) -> int:
        """Return the row of the list with this id, or -1."""
        return next((row for row, summary in enumerate(self._lists) if summary.id == list_id), -1)

    def rowCount(self, parent: Index = _NO_PARENT) -> int:
        return 0 if parent.isValid() else len(self._lists)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._lists):
            return None
        summary = self._lists[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return summary.title or "Untitled"
        if role == Qt.ItemDataRole.ToolTipRole:
            return _describe(summary)
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return f"{summary.title or 'Untitled'}, {_describe(summary)}"
        if role == ID_ROLE:
            return summary.id
        if role == COUNT_ROLE:
            return summary.items
        if role == SHARED_ROLE:
            return summary.shared
        return None


def _describe(summary: ListSummary) -> str:
    count = f"{summary.items} item{'s' if summary.items != 1 else ''}"
    return f"{count}, shared" if summary.shared else count
