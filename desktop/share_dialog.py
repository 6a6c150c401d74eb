"""The share dialog: the current list's share code to copy or replace, and a field to join a list by its
code."""

from __future__ import annotations

import asyncio

from PySide6.QtGui import QFont, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.list_controller import ListController
from sync_service.errors import ShoplistError
from sync_service.share_code import ShareCodeError, list_id_of


class ShareDialog(QDialog):
    """Shows the code of the list on screen (marking it shared) and joins other lists by code."""

    def __init__(self, controller: ListController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setWindowTitle("Share")
        self.setAccessibleName("Share")
        self.setMinimumWidth(520)
        layout = QVBoxLayout(self)

        share_box = QGroupBox(f"Share “{controller.current_title}”" if controller.current_id else "Share")
        share_layout = QVBoxLayout(share_box)
        code = controller.share_code()
        self.code_field = QLineEdit(code or "")
        self.code_field.setReadOnly(True)
        self.code_field.setAccessibleName("Share code")
        self.code_field.setFont(QFont("monospace"))
        self.copy_button = QPushButton("Copy")
        self.copy_button.setAccessibleName("Copy share code")
        self.copy_button.clicked.connect(self.copy_code)
        self.reshare_button = QPushButton("New code")
        self.reshare_button.setAccessibleName("New share code")
        self.reshare_button.setToolTip("Replace the code: whoever has the old one then sees an empty list")
        self.reshare_button.clicked.connect(self.reshare)
        row = QHBoxLayout()
        row.addWidget(self.code_field, 1)
        row.addWidget(self.copy_button)
        row.addWidget(self.reshare_button)
        share_layout.addLayout(row)
        self.share_hint = QLabel(
            "Anyone with this code can open and edit the list."
            if code
            else "Make or pick a list first; then its code shows here."
        )
        self.share_hint.setWordWrap(True)
        share_layout.addWidget(self.share_hint)
        self.code_field.setEnabled(bool(code))
        self.copy_button.setEnabled(bool(code))
        self.reshare_button.setEnabled(bool(code))
        layout.addWidget(share_box)

        join_box = QGroupBox("Join a list")
        join_layout = QVBoxLayout(join_box)
        self.join_field = QLineEdit()
        self.join_field.setPlaceholderText("SL-XXXX-XXXX-…")
        self.join_field.setAccessibleName("Code to join")
        self.join_field.setFont(QFont("monospace"))
        self.join_button = QPushButton("Join")
        self.join_button.setAccessibleName("Join list")
        self.join_button.clicked.connect(self.join)
        self.join_field.returnPressed.connect(self.join)
        row = QHBoxLayout()
        row.addWidget(self.join_field, 1)
        row.addWidget(self.join_button)
        join_layout.addLayout(row)
        self.join_status = QLabel("")
        self.join_status.setAccessibleName("Join status")
        self.join_status.setWordWrap(True)
        join_layout.addWidget(self.join_status)
        layout.addWidget(join_box)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        if code:
            self._show_pending()

    def copy_code(self) -> None:
        """Put the share code on the clipboard."""
        QGuiApplication.clipboard().setText(self.code_field.text())
        self.share_hint.setText("Copied. Anyone with this code can open and edit the list.")

    def reshare(self) -> None:
        """Replace the list's code; the new one shows here once the cloud has the moved list."""
        self.share_hint.setText("Moving the list to a new code…")
        self.reshare_button.setEnabled(False)
        self.controller.reshare().add_done_callback(self._reshared)

    def _reshared(self, future: asyncio.Future[str]) -> None:
        if not self.isVisible():
            return
        self.reshare_button.setEnabled(True)
        error = future.exception()
        if error is None:
            self.code_field.setText(future.result())
            self.share_hint.setText("New code. Whoever had the old code now sees an empty list.")
        else:
            self.share_hint.setText(str(error) if isinstance(error, ShoplistError) else f"Failed: {error}")

    def join(self) -> None:
        """Join the list whose code is typed; the dialog closes once it is shown."""
        code = self.join_field.text()
        try:
            list_id_of(code)
        except ShareCodeError as error:
            self.join_status.setText(str(error))
            return
        self.join_status.setText("Fetching the list from the cloud…")
        self.join_button.setEnabled(False)
        self.controller.join(code).add_done_callback(self._joined)

    def _joined(self, future: asyncio.Future[object]) -> None:
        if not self.isVisible():
            return  # closed while the cloud was asked
        self.join_button.setEnabled(True)
        error = future.exception()
        if error is None:
            self.accept()
        elif isinstance(error, ShoplistError):
            self.join_status.setText(str(error))
        else:
            self.join_status.setText(f"Could not join: {error}")

    def _show_pending(self) -> None:
        def shown(future: asyncio.Future[int]) -> None:
            if future.exception() is None and future.result() and self.isVisible():
                self.share_hint.setText(
                    "Anyone with this code can open and edit the list. Its latest changes reach the cloud"
                    " at the next sync."
                )

        self.controller.pending_for_current().add_done_callback(shown)
