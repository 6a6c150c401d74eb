"""The keyboard contract (one table that the menus, the Help page and the docs follow) and the filter that
keeps text fields from swallowing the window's undo and redo keys."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QKeyEvent, QKeySequence


@dataclass(frozen=True)
class Shortcut:
    """One key of the contract: the action's name in the window, its keys, and what it does."""

    action: str
    keys: tuple[str, ...]
    does: str


CONTRACT = (
    Shortcut("new_list", ("Ctrl+N",), "New list (a dialog; Enter confirms). The new list becomes current."),
    Shortcut("quick_add", ("Ctrl+L",), "Go to Quick add. Enter adds (even with suggestions showing)."),
    Shortcut("filter", ("Ctrl+F",), "Filter the items shown."),
    Shortcut("toggle_got", ("Space",), "Check the selected item off, or back on."),
    Shortcut("remove_item", ("Delete",), "Remove the selected item."),
    Shortcut("undo", ("Ctrl+Z",), "Undo the last list edit, wherever the focus is."),
    Shortcut("redo", ("Ctrl+Shift+Z", "Ctrl+Y"), "Redo."),
    Shortcut("share", ("Ctrl+Shift+S",), "Share: show the list's code, or join a list by code."),
    Shortcut("sync_now", ("F5",), "Sync now."),
    Shortcut("rename_list", ("F2",), "Rename the current list."),
    Shortcut("help", ("F1",), "Show these keys."),
)

BY_ACTION = {shortcut.action: shortcut for shortcut in CONTRACT}


def key_sequences(action: str) -> list[QKeySequence]:
    """Return the key sequences of `action` as Qt wants them."""
    return [QKeySequence(keys) for keys in BY_ACTION[action].keys]


def contract_html() -> str:
    """Return the contract as an HTML table for the Help dialog."""
    rows = "".join(
        f"<tr><td style='padding:3px 14px 3px 0'><b>{' or '.join(shortcut.keys)}</b></td>"
        f"<td style='padding:3px 0'>{shortcut.does}</td></tr>"
        for shortcut in CONTRACT
    )
    return f"<table>{rows}</table>"


class WindowKeysFirst(QObject):
    """An event filter for text fields: undo and redo keys go to the window (list edits), not to the
    field's own text undo, which would otherwise take them."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._keys = [sequence for action in ("undo", "redo") for sequence in key_sequences(action)]

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent):
            pressed = QKeySequence(event.keyCombination())
            if any(
                pressed.matches(sequence) == QKeySequence.SequenceMatch.ExactMatch for sequence in self._keys
            ):
                event.ignore()  # not overridden: the window's shortcut fires
                return True
        return False
