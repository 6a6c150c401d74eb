"""The QUndoCommand that puts one store edit on the window's undo stack."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QUndoCommand

from desktop.edits import Edit

Perform = Callable[[Edit, bool], None]  # (edit, undo?) -> schedules it on the store thread


class EditCommand(QUndoCommand):
    """Redo runs the edit's `do`, undo its `undo`, both through `perform`, which queues them on the store
    thread (so they run in the order the stack asked for them). A failed edit stays on the stack as a
    no-op."""

    def __init__(self, edit: Edit, perform: Perform) -> None:
        super().__init__(edit.describe())
        self.edit = edit
        self.failed = False
        self._perform = perform

    def redo(self) -> None:
        if not self.failed:
            self._perform(self.edit, False)

    def undo(self) -> None:
        if not self.failed:
            self._perform(self.edit, True)
