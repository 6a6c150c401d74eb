"""The main window: lists sidebar, the current list's items, quick add, filter and the status bar. A
thin view: every action goes to the ListController, which owns the models."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QSortFilterProxyModel, QStringListModel, Qt
from PySide6.QtGui import QAction, QCloseEvent, QFont, QIcon, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCompleter,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListView,
    QMainWindow,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from desktop.item_delegate import ItemEditorDelegate
from desktop.items_model import CATEGORY, COLUMNS, NAME, NOTE, UNIT
from desktop.list_controller import ListController
from desktop.list_delegate import ListRowDelegate
from desktop.lists_model import ID_ROLE
from desktop.share_dialog import ShareDialog
from desktop.shortcuts import BY_ACTION, WindowKeysFirst, contract_html, key_sequences
from desktop.sync_display import SyncDisplay
from sync_service.resources import icon_path

GEOMETRY_KEY = "window/geometry"
SPLITTER_KEY = "window/splitter"
APP_ICON_SIZES = (16, 24, 32, 48, 64, 128, 256)
NOTICE_MS = 30_000


def app_icon() -> QIcon:
    """Return the Shoplist icon at every size the icons folder has."""
    icon = QIcon()
    for size in APP_ICON_SIZES:
        path = icon_path(f"png/shoplist-{size}.png")
        if path is not None:
            icon.addFile(str(path))
    return icon


class MainWindow(QMainWindow):
    """The Shoplist window over one ListController."""

    def __init__(self, controller: ListController) -> None:
        super().__init__()
        self.controller = controller
        controller.setParent(self)  # its models and undo stack go with the window
        self.keys_first = WindowKeysFirst(self)
        self.new_list_dialog: QInputDialog | None = None
        self.rename_dialog: QInputDialog | None = None
        self.share_dialog: ShareDialog | None = None
        self.help_dialog: QDialog | None = None
        # What was selected before the items model reset: (name, row, group row, column), and the scroll.
        self._remembered: tuple[str | None, int, int, int] = (None, -1, -1, 0)
        self._remembered_scroll = 0
        self.setWindowTitle("Shoplist")
        self.setWindowIcon(app_icon())
        self.setAccessibleName("Shoplist")
        self._build_sidebar()
        self._build_list_pane()
        splitter = QSplitter()
        splitter.setAccessibleName("Lists and items")
        splitter.addWidget(self.sidebar)
        splitter.addWidget(self.list_pane)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([230, 770])
        splitter.setChildrenCollapsible(False)
        self.splitter = splitter
        self.setCentralWidget(splitter)
        self._build_status_bar()
        self._build_actions()
        self._connect()
        self._restore_geometry()
        self._show_page()
        self.quick_add.setFocus()  # typing starts at once, even while the store opens

    # ----- building --------------------------------------------------------------------------------

    def _build_sidebar(self) -> None:
        self.sidebar = QWidget()
        self.sidebar.setAccessibleName("Sidebar")
        layout = QVBoxLayout(self.sidebar)
        layout.setContentsMargins(10, 12, 4, 10)
        heading = QLabel("Lists")
        heading.setAccessibleName("Lists heading")
        heading.setFont(_scaled_font(heading.font(), 1.0, bold=True))
        layout.addWidget(heading)
        self.lists_view = QListView()
        self.lists_view.setAccessibleName("Lists")
        self.lists_view.setModel(self.controller.lists_model)
        self.lists_view.setItemDelegate(ListRowDelegate(self.lists_view))
        self.lists_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.lists_view.setUniformItemSizes(True)
        self.lists_view.setMinimumWidth(170)
        layout.addWidget(self.lists_view, 1)
        self.new_list_button = QPushButton("New list")
        self.new_list_button.setAccessibleName("New list")
        self.new_list_button.setToolTip("New list (Ctrl+N)")
        layout.addWidget(self.new_list_button)

    def _build_list_pane(self) -> None:
        self.list_pane = QWidget()
        layout = QVBoxLayout(self.list_pane)
        layout.setContentsMargins(8, 12, 12, 8)
        layout.setSpacing(8)
        self.title_label = QLabel("")
        self.title_label.setAccessibleName("List title")
        self.title_label.setFont(_scaled_font(self.title_label.font(), 1.5, bold=True))
        self.title_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.title_label)

        row = QHBoxLayout()
        row.setSpacing(8)
        self.quick_add = QLineEdit()
        self.quick_add.setAccessibleName("Quick add")
        self.quick_add.setPlaceholderText("Add an item: 6 eggs, Milk 2, 2 kg flour…   (Ctrl+L)")
        self.quick_add.setClearButtonEnabled(True)
        self.quick_add.installEventFilter(self.keys_first)
        self.history_model = QStringListModel(self.controller.history(), self)
        self.completer = QCompleter(self.history_model, self)
        self.completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.completer.setMaxVisibleItems(8)
        self.completer.popup().setAccessibleName("Suggestions")
        self.completer.popup().installEventFilter(self.keys_first)
        self.quick_add.setCompleter(self.completer)
        row.addWidget(self.quick_add, 3)
        self.filter_field = QLineEdit()
        self.filter_field.setAccessibleName("Filter")
        self.filter_field.setPlaceholderText("Filter   (Ctrl+F)")
        self.filter_field.setClearButtonEnabled(True)
        self.filter_field.installEventFilter(self.keys_first)
        row.addWidget(self.filter_field, 1)
        layout.addLayout(row)

        self.filter_model = QSortFilterProxyModel(self)
        self.filter_model.setSourceModel(self.controller.items_model)
        self.filter_model.setRecursiveFilteringEnabled(True)
        self.filter_model.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.filter_model.setFilterKeyColumn(NAME)
        self.items_view = QTreeView()
        self.items_view.setAccessibleName("Items")
        self.items_view.setModel(self.filter_model)
        self.items_view.setItemDelegate(ItemEditorDelegate(self.keys_first, self.items_view))
        self.items_view.setUniformRowHeights(True)
        self.items_view.setAlternatingRowColors(True)
        self.items_view.setRootIsDecorated(False)
        self.items_view.setItemsExpandable(False)
        self.items_view.setIndentation(14)
        self.items_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.items_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.items_view.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked | QAbstractItemView.EditTrigger.EditKeyPressed
        )
        header = self.items_view.header()
        header.setAccessibleName("Item columns")
        header.setStretchLastSection(True)
        header.setSectionResizeMode(NAME, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(NOTE, QHeaderView.ResizeMode.Stretch)
        for column in range(1, len(COLUMNS) - 1):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(1, 72)
        header.resizeSection(2, 60)
        header.resizeSection(UNIT, 70)
        header.resizeSection(CATEGORY, 110)

        self.empty_label = QLabel("")
        self.empty_label.setAccessibleName("Empty state")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.empty_label.setFont(_scaled_font(self.empty_label.font(), 1.15))
        self.empty_label.setForegroundRole(self.empty_label.foregroundRole())
        self.failure_page = QWidget()
        failure_layout = QVBoxLayout(self.failure_page)
        failure_layout.addStretch(1)
        self.failure_label = QLabel("")
        self.failure_label.setAccessibleName("Store error")
        self.failure_label.setWordWrap(True)
        self.failure_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.failure_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        failure_layout.addWidget(self.failure_label)
        self.retry_button = QPushButton("Try again")
        self.retry_button.setAccessibleName("Try again")
        failure_layout.addWidget(self.retry_button, 0, Qt.AlignmentFlag.AlignHCenter)
        failure_layout.addStretch(2)
        self.pages = QStackedWidget()
        self.pages.setAccessibleName("List content")
        self.pages.addWidget(self.items_view)
        self.pages.addWidget(self.empty_label)
        self.pages.addWidget(self.failure_page)
        layout.addWidget(self.pages, 1)

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        bar.setAccessibleName("Status bar")
        self.sync_icon = QLabel()
        self.sync_icon.setAccessibleName("Sync state icon")
        self.sync_label = QLabel("")
        self.sync_label.setAccessibleName("Sync state")
        holder = QWidget()
        holder_layout = QHBoxLayout(holder)
        holder_layout.setContentsMargins(0, 0, 8, 0)
        holder_layout.setSpacing(6)
        holder_layout.addWidget(self.sync_icon)
        holder_layout.addWidget(self.sync_label)
        bar.addPermanentWidget(holder)

    def _build_actions(self) -> None:
        c = self.controller
        menu_bar = self.menuBar()
        lists_menu = menu_bar.addMenu("&List")
        edit_menu = menu_bar.addMenu("&Edit")
        sync_menu = menu_bar.addMenu("&Sync")
        help_menu = menu_bar.addMenu("&Help")
        self.actions_by_name: dict[str, QAction] = {}

        def action(
            name: str, text: str, handler: Any, menu: Any, widgets: tuple[QWidget, ...] = ()
        ) -> QAction:
            made = QAction(text, self)
            made.setShortcuts(key_sequences(name))
            made.setToolTip(f"{text.replace('&', '').rstrip('…')} ({BY_ACTION[name].keys[0]})")
            made.triggered.connect(handler)
            if widgets:
                made.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
                for widget in widgets:
                    widget.addAction(made)
            else:
                self.addAction(made)
            menu.addAction(made)
            self.actions_by_name[name] = made
            return made

        action("new_list", "&New list…", self.ask_new_list, lists_menu)
        action("rename_list", "&Rename list…", self.ask_rename_list, lists_menu)
        delete = QAction("&Delete list", self)
        delete.triggered.connect(self.delete_list)
        lists_menu.addAction(delete)
        self.actions_by_name["delete_list"] = delete
        lists_menu.addSeparator()
        action("share", "&Share or join…", self.show_share, lists_menu)
        lists_menu.addSeparator()
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        lists_menu.addAction(quit_action)

        action("undo", "&Undo", c.undo, edit_menu)
        action("redo", "&Redo", c.redo, edit_menu)
        edit_menu.addSeparator()
        action("quick_add", "&Quick add", self.focus_quick_add, edit_menu)
        action("filter", "&Filter", self.focus_filter, edit_menu)
        edit_menu.addSeparator()
        action("toggle_got", "&Check off", self.toggle_selected, edit_menu, (self.items_view,))
        action("remove_item", "Re&move item", self.remove_selected, edit_menu, (self.items_view,))
        action("sync_now", "Sync &now", c.sync_now, sync_menu)
        action("help", "&Keyboard shortcuts", self.show_help, help_menu)
        # Undo and redo stay enabled: pressed while the store opens, they wait in the queue like any key.
        c.undo_stack.undoTextChanged.connect(lambda text: self._label_step("undo", "&Undo", text))
        c.undo_stack.redoTextChanged.connect(lambda text: self._label_step("redo", "&Redo", text))

    def _connect(self) -> None:
        c = self.controller
        self.quick_add.returnPressed.connect(self.submit_quick_add)
        self.filter_field.textChanged.connect(self._filter_changed)
        self.new_list_button.clicked.connect(self.ask_new_list)
        self.retry_button.clicked.connect(self._retry)
        self.lists_view.selectionModel().currentChanged.connect(self._list_chosen)
        self.lists_view.model().modelReset.connect(self._select_current_list)
        c.current_changed.connect(self._current_list_changed)
        c.title_changed.connect(self._title_changed)
        c.items_refreshed.connect(self._items_refreshed)
        c.items_model.modelAboutToBeReset.connect(self._before_items_reset)
        c.items_model.modelReset.connect(self._after_items_reset)
        c.sync_changed.connect(self.show_sync)
        c.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        c.notice.connect(self._show_notice)
        c.history_changed.connect(self.history_model.setStringList)
        c.ready.connect(self._show_page)
        c.failed.connect(self._failed)
        self.filter_model.rowsInserted.connect(self._expand_groups)

    # ----- user actions ----------------------------------------------------------------------------

    def submit_quick_add(self) -> None:
        """Add what the quick-add field holds, then clear it (Enter)."""
        text = self.quick_add.text()
        self.completer.popup().hide()
        if self.controller.quick_add(text):
            self.quick_add.clear()
        elif text.strip():
            self.statusBar().showMessage("Type an item name, e.g. “6 eggs”", 5000)

    def focus_quick_add(self) -> None:
        """Move the focus to quick add (Ctrl+L)."""
        self.quick_add.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.quick_add.selectAll()

    def focus_filter(self) -> None:
        """Move the focus to the filter (Ctrl+F)."""
        self.filter_field.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.filter_field.selectAll()

    def selected_item_name(self) -> str | None:
        """Return the name of the selected item, or None."""
        index = self.items_view.currentIndex()
        if not index.isValid():
            return None
        item = self.controller.items_model.item_at(self.filter_model.mapToSource(index.siblingAtColumn(0)))
        return item.name if item else None

    def toggle_selected(self) -> None:
        """Check the selected item off, or back on (Space)."""
        name = self.selected_item_name()
        if name:
            self.controller.toggle_got(name)

    def remove_selected(self) -> None:
        """Remove the selected item (Delete); the selection moves to the next row."""
        name = self.selected_item_name()
        if name:
            self.controller.remove_item(name)

    def ask_new_list(self) -> None:
        """Ask for a title and make the list (Ctrl+N; Enter confirms)."""
        dialog = QInputDialog(self)
        dialog.setWindowTitle("New list")
        dialog.setLabelText("Title of the new list:")
        dialog.setAccessibleName("New list")
        dialog.setTextValue("")
        dialog.textValueSelected.connect(self._new_list_chosen)
        self.new_list_dialog = dialog
        dialog.open()

    def _new_list_chosen(self, title: str) -> None:
        if title.strip():
            self.controller.new_list(title)
            self.quick_add.setFocus()

    def ask_rename_list(self) -> None:
        """Ask for the current list's new title (F2)."""
        if not self.controller.current_id:
            return
        dialog = QInputDialog(self)
        dialog.setWindowTitle("Rename list")
        dialog.setLabelText("New title:")
        dialog.setAccessibleName("Rename list")
        dialog.setTextValue(self.controller.current_title)
        dialog.textValueSelected.connect(
            lambda title: self.controller.rename_list(title) if title.strip() else None
        )
        self.rename_dialog = dialog
        dialog.open()

    def delete_list(self) -> None:
        """Forget the current list on this computer (undo brings it back)."""
        if self.controller.current_id:
            title = self.controller.current_title
            self.controller.delete_list()
            self.statusBar().showMessage(f"Deleted “{title}” on this computer. Ctrl+Z brings it back.", 8000)

    def show_share(self) -> None:
        """Show the share dialog (Ctrl+Shift+S)."""
        self.share_dialog = ShareDialog(self.controller, self)
        self.share_dialog.open()

    def show_help(self) -> None:
        """Show the keyboard contract (F1)."""
        dialog = QDialog(self)
        dialog.setWindowTitle("Keyboard shortcuts")
        dialog.setAccessibleName("Keyboard shortcuts")
        layout = QVBoxLayout(dialog)
        text = QLabel(contract_html())
        text.setAccessibleName("Shortcut list")
        text.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(dialog.reject)
        layout.addWidget(buttons)
        self.help_dialog = dialog
        dialog.open()

    # ----- reacting to the controller --------------------------------------------------------------

    def _show_notice(self, headline: str, text: str) -> None:
        """Show a one-time notice: its headline in the status bar for a while, its whole text (which may
        not fit beside the sync status) as the status bar's tooltip while the headline shows."""
        bar = self.statusBar()
        bar.showMessage(headline, NOTICE_MS)
        bar.setToolTip(text)
        bar.messageChanged.connect(lambda message: bar.setToolTip(text if message == headline else ""))

    def show_sync(self, display: SyncDisplay) -> None:
        """Show the sync state in the status bar."""
        self.sync_label.setText(display.text)
        self.sync_label.setToolTip(display.text)
        path = icon_path(display.icon.replace(".svg", "-16.png").replace("tray-", "png/tray-"))
        self.sync_icon.setPixmap(QPixmap(str(path)) if path else QPixmap())
        self.sync_icon.setAccessibleDescription(display.state)

    def _label_step(self, name: str, base: str, text: str) -> None:
        self.actions_by_name[name].setText(f"{base} {text}" if text else base)

    def _list_chosen(self, current: QModelIndex, _previous: QModelIndex) -> None:
        list_id = current.data(ID_ROLE) if current.isValid() else None
        if list_id:
            self.controller.select_list(str(list_id))

    def _select_current_list(self) -> None:
        row = self.controller.lists_model.row_of(self.controller.current_id)
        if row >= 0:
            self.lists_view.setCurrentIndex(self.controller.lists_model.index(row))

    def _current_list_changed(self, list_id: str) -> None:
        self.filter_field.clear()
        self._select_current_list()
        self._show_page()

    def _title_changed(self, title: str) -> None:
        self.title_label.setText(title)
        self.setWindowTitle(f"{title} — Shoplist" if title else "Shoplist")

    def _before_items_reset(self) -> None:
        index = self.items_view.currentIndex()
        self._remembered = (self.selected_item_name(), index.row(), index.parent().row(), index.column())
        self._remembered_scroll = self.items_view.verticalScrollBar().value()

    def _after_items_reset(self) -> None:
        """Keep the selection on the same item, or on the row that took its place (after a remove)."""
        self._expand_groups()
        name, row, group_row, column = self._remembered
        target = QModelIndex()
        if name:
            source = self.controller.items_model.index_of(name)
            target = self.filter_model.mapFromSource(source.siblingAtColumn(max(column, 0)))
            if not target.isValid() and group_row >= 0:
                group = self.filter_model.index(group_row, 0)
                count = self.filter_model.rowCount(group)
                if count:
                    target = self.filter_model.index(min(row, count - 1), max(column, 0), group)
        if target.isValid():
            self.items_view.setCurrentIndex(target)
        self.items_view.verticalScrollBar().setValue(self._remembered_scroll)

    def _items_refreshed(self) -> None:
        self._show_page()
        self._select_current_list()

    def _expand_groups(self, *args: Any) -> None:
        """Keep every group expanded (groups do not fold). Right after a reset the view has not laid
        out its rows yet, so this only marks 20-odd group rows: it costs the same for 5,000 items."""
        model = self.filter_model
        for row in range(model.rowCount()):
            self.items_view.expand(model.index(row, 0))

    def _filter_changed(self, text: str) -> None:
        self.filter_model.setFilterFixedString(text.strip())
        self._expand_groups()
        self._show_page()

    def _failed(self, message: str) -> None:
        self.failure_label.setText(f"Shoplist could not open your lists.\n\n{message}")
        self.pages.setCurrentWidget(self.failure_page)
        self.sync_label.setText("Store not open")

    def _retry(self) -> None:
        self._show_page()
        self.controller.start()

    def _show_page(self) -> None:
        """Show the items, or the empty state that says what to do."""
        c = self.controller
        if c.state == "failed":
            self.pages.setCurrentWidget(self.failure_page)
            return
        if c.state == "opening":
            self._empty("Opening your lists…")
        elif not c.lists_model.rowCount():
            self._empty("No lists yet — Ctrl+N makes one.\nOr just type an item in Quick add.")
        elif c.items_model.item_count() == 0:
            self._empty(
                f"Nothing on “{c.current_title}” yet.\nType an item in Quick add: “6 eggs”, “2 kg flour”."
            )
        elif self.filter_model.rowCount() == 0:
            self._empty(f"No items match “{self.filter_field.text().strip()}”.")
        else:
            self.pages.setCurrentWidget(self.items_view)
            return

    def _empty(self, text: str) -> None:
        self.empty_label.setText(text)
        self.pages.setCurrentWidget(self.empty_label)

    # ----- geometry --------------------------------------------------------------------------------

    def _restore_geometry(self) -> None:
        settings = self.controller.settings
        geometry = settings.value(GEOMETRY_KEY)
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1000, 640)
        splitter = settings.value(SPLITTER_KEY)
        if splitter is not None:
            self.splitter.restoreState(splitter)

    def closeEvent(self, event: QCloseEvent) -> None:
        settings = self.controller.settings
        settings.setValue(GEOMETRY_KEY, self.saveGeometry())
        settings.setValue(SPLITTER_KEY, self.splitter.saveState())
        settings.sync()
        self.controller.close()
        super().closeEvent(event)


def _scaled_font(base: QFont, factor: float, bold: bool = False) -> QFont:
    font = QFont(base)
    if font.pointSizeF() > 0:
        font.setPointSizeF(font.pointSizeF() * factor)
    font.setBold(bold)
    return font
