"""What the window does: opens the store without blocking, queues every user action in order (so keys
pressed while the store starts are kept), runs edits through the undo stack, and refreshes the models
whenever the store says something changed, whoever changed it."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from PySide6.QtCore import QObject, QSettings, QTimer, Signal
from PySide6.QtGui import QUndoStack

from desktop.edits import AddItem, ChangeItem, DeleteList, Edit, NewList, RemoveItem, RenameList, ToggleGot
from desktop.items_model import ItemsModel
from desktop.lists_model import ListsModel
from desktop.quick_add import parse_quick_add
from desktop.store_session import EVERYTHING, StoreSession
from desktop.sync_display import OPENING, describe_sync
from desktop.undo_commands import EditCommand
from desktop.view_cache import ViewCache
from sync_service.errors import ListNotFoundError, ShoplistError
from sync_service.home import Home
from sync_service.share_code import share_code
from sync_service.store import SYNC_REQUESTED, SYNC_STATUS_CHANGED, ListSummary, Store, open_store

log = logging.getLogger("shoplist.desktop")

Action = Callable[[], Awaitable[Any]]
HISTORY_KEY = "history/names"
LAST_LIST_KEY = "lists/last"
HISTORY_LIMIT = 500
HISTORY_SCAN_ITEMS = 2000  # how many stored items the start-up scan for autocomplete names reads at most
SYNC_POLL_MS = 3000  # a killed sync service sends no notification: look again this often
FIRST_LIST_TITLE = "Shopping"  # made by a quick add in a home with no list yet


class ListController(QObject):
    """The window's logic over one home. `state` is "opening", "ready", "failed" or "closed"."""

    ready = Signal()
    failed = Signal(str)
    message = Signal(str)
    current_changed = Signal(str)  # the id of the list shown ("" for none)
    title_changed = Signal(str)
    sync_changed = Signal(object)  # a SyncDisplay
    history_changed = Signal(list)
    items_refreshed = Signal()
    notice = Signal(str, str)  # a headline and the whole text, shown once (where the home's secrets are)

    def __init__(self, home: Home, settings: QSettings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.home = home
        self.settings = settings
        self.session = StoreSession(home, self)
        self.lists_model = ListsModel(self)
        self.items_model = ItemsModel(self)
        self.undo_stack = QUndoStack(self)
        self.state = "opening"
        self.current_id = str(settings.value(LAST_LIST_KEY, "") or "")
        self.current_title = ""
        self.secrets_notice: str | None = None  # None until checked; "" when there is nothing to say
        self._pending: deque[Action] = deque()
        self._draining = False
        self._inflight: asyncio.Future[None] | None = None
        self._refreshing: set[str] = set()
        self._dirty: set[str] = set()
        self._tasks: set[asyncio.Future[Any]] = set()
        self._views = ViewCache()  # used on the store thread only
        stored = settings.value(HISTORY_KEY, []) or []
        self._history: list[str] = [str(name) for name in (stored if isinstance(stored, list) else [stored])]
        self._sync_timer = QTimer(self)
        self._sync_timer.setInterval(SYNC_POLL_MS)
        self._sync_timer.timeout.connect(self._refresh_sync_soon)
        self.items_model.edit_requested.connect(self.change_item)
        self.session.changed.connect(self._on_store_changed)

    # ----- life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Open the store in the background; `ready` or `failed` follows."""
        self.state = "opening"
        self.sync_changed.emit(OPENING)
        self._spawn(self._open())

    def close(self) -> None:
        """Stop refreshing and close the store once the edits already asked for are done."""
        self.state = "closed"
        self._sync_timer.stop()
        for task in list(self._tasks):
            task.cancel()
        self._pending.clear()
        self.session.close()

    async def _open(self) -> None:
        try:
            await self.session.open()
            await self.session.start_listening()
            summaries = await self.session.call(lambda store: store.lists())
        except ShoplistError as error:
            self.state = "failed"
            self.failed.emit(str(error))
            return
        self.lists_model.set_lists(summaries)
        wanted = self.current_id if self.lists_model.row_of(self.current_id) >= 0 else ""
        self.current_id = ""
        await self._show(wanted or (summaries[0].id if summaries else ""))
        self.state = "ready"
        self.ready.emit()
        self._sync_timer.start()
        self._refresh_sync_soon()
        self._drain()
        self._spawn(self._load_history())
        self._spawn(self._check_secrets())

    async def _check_secrets(self) -> None:
        """Say once where the home's secrets are, if not in a keyring (asked off the GUI thread: a
        desktop keyring answers over D-Bus)."""
        from desktop.settings import SECRETS_HEADLINE, secrets_notice
        from sync_service.keychain import secrets_report

        report = await self.session.call(lambda store: secrets_report(self.home))
        self.secrets_notice = secrets_notice(report, self.settings)
        if self.secrets_notice:
            log.warning("%s", self.secrets_notice)
            self.notice.emit(SECRETS_HEADLINE, self.secrets_notice)

    # ----- user actions: each queued, run in order once the store is open ------------------------------

    def quick_add(self, text: str) -> bool:
        """Add what `text` describes ("6 eggs") to the current list; False if it names nothing."""
        parsed = parse_quick_add(text)
        if parsed is None:
            return False
        self._remember(parsed.name)
        list_id = self.current_id

        async def add() -> None:
            target = list_id or self.current_id
            if not target:
                await self._apply(NewList(FIRST_LIST_TITLE))
                target = self.current_id
            known = self.items_model.find(parsed.name) if target == self.current_id else None
            details = {"unit": parsed.unit} if parsed.unit else {}
            await self._apply(
                AddItem(target, known.name if known else parsed.name, parsed.needed, 0, details)
            )

        self._enqueue(add)
        return True

    def toggle_got(self, name: str) -> None:
        """Check the item off (acquired = needed), or back on if it is got already."""
        self._enqueue_edit(lambda list_id: ToggleGot(list_id, name))

    def change_item(self, name: str, changes: dict[str, Any]) -> None:
        """Set the item's fields: needed, acquired (ints), category, unit, note (strings)."""
        quantities = {key: changes[key] for key in ("needed", "acquired") if key in changes}
        details = {key: str(changes[key]) for key in ("category", "unit", "note") if key in changes}
        self._enqueue_edit(lambda list_id: ChangeItem(list_id, name, details=details, **quantities))

    def remove_item(self, name: str) -> None:
        """Remove the item from the current list."""
        self._enqueue_edit(lambda list_id: RemoveItem(list_id, name))

    def new_list(self, title: str) -> None:
        """Make a list called `title`; it becomes the current one."""
        self._enqueue(lambda: self._apply(NewList(title)))

    def rename_list(self, title: str) -> None:
        """Give the current list a new title."""
        self._enqueue_edit(lambda list_id: RenameList(list_id, title))

    def delete_list(self) -> None:
        """Forget the current list on this computer (undo brings it back)."""
        self._enqueue_edit(lambda list_id: DeleteList(list_id, self.current_title))

    def undo(self) -> None:
        """Undo the last edit, whichever list it was in (that list becomes current)."""
        self._enqueue(lambda: self._step(undo=True))

    def redo(self) -> None:
        """Redo the last undone edit."""
        self._enqueue(lambda: self._step(undo=False))

    def select_list(self, list_id: str) -> None:
        """Show the list with this id."""
        if list_id and list_id != self.current_id:
            self._spawn(self._show(list_id))

    def sync_now(self) -> None:
        """Ask the sync service to push and pull everything now."""

        def request(store: Store) -> bool:
            if not store.sync_service_running():
                return False
            store.request_sync()
            return True

        async def run() -> None:
            if await self.session.call(request):
                self.message.emit("Syncing now…")
            else:
                self.message.emit(
                    "The sync service is not running (start shoplist-sync); changes are kept here"
                )

        self._enqueue(run)

    def share_code(self) -> str:
        """Return the current list's share code and mark the list shared ("" when no list is shown)."""
        if not self.current_id:
            return ""
        list_id = self.current_id
        self._enqueue(lambda: self.session.call(lambda store: store.mark_shared(list_id)))
        return share_code(list_id)

    def pending_for_current(self) -> asyncio.Future[int]:
        """Return a future of how many of the current list's changes have not reached the cloud."""
        list_id = self.current_id
        return self.session.call(
            lambda store: sum(1 for entry in store.outbox(limit=100_000) if entry.list_id == list_id)
        )

    def join(self, code: str) -> asyncio.Future[ListSummary]:
        """Fetch the shared list `code` names and show it; the future fails with a ShoplistError."""
        from sync_service.cli_online import join_by_code

        result: asyncio.Future[ListSummary] = asyncio.get_event_loop().create_future()

        async def run() -> None:
            try:
                summary = await self.session.call(lambda store: join_by_code(store, self.home, code))
            except ShoplistError as error:
                result.set_exception(error)
                return
            await self._refresh_lists()
            await self._show(summary.id)
            result.set_result(summary)

        self._enqueue(run)
        return result

    def reshare(self) -> asyncio.Future[str]:
        """Give the current list a new share code (the old one then opens an empty list) and show the
        moved list; the future has the new code, or fails with a ShoplistError."""
        from sync_service.cli_online import reshare_list

        result: asyncio.Future[str] = asyncio.get_event_loop().create_future()
        list_id = self.current_id

        async def run() -> None:
            try:
                moved, code = await self.session.call(lambda store: reshare_list(store, self.home, list_id))
            except ShoplistError as error:
                result.set_exception(error)
                return
            await self._refresh_lists()
            await self._show(moved.id)
            result.set_result(code)

        self._enqueue(run)
        return result

    def history(self) -> list[str]:
        """Return the names offered by autocomplete, most recently added first."""
        return list(self._history)

    # ----- the queue ---------------------------------------------------------------------------------

    def _enqueue(self, action: Action) -> None:
        self._pending.append(action)
        self._drain()

    def _enqueue_edit(self, make: Callable[[str], Edit]) -> None:
        list_id = self.current_id

        async def run() -> None:
            target = list_id or self.current_id
            if target:
                await self._apply(make(target))

        self._enqueue(run)

    def _drain(self) -> None:
        if self.state == "ready" and not self._draining and self._pending:
            self._draining = True
            self._spawn(self._drain_all())

    async def _drain_all(self) -> None:
        try:
            while self._pending and self.state == "ready":
                action = self._pending.popleft()
                try:
                    await action()
                except ShoplistError as error:
                    self.message.emit(str(error))
                except Exception:  # a bug: log it and keep the window working
                    log.exception("an action failed")
                    self.message.emit("Something went wrong; see the log")
        finally:
            self._draining = False

    # ----- edits and the undo stack ------------------------------------------------------------------

    def _perform(self, edit: Edit, undo: bool) -> None:
        self._inflight = self.session.call(edit.undo if undo else edit.do)

    async def _apply(self, edit: Edit) -> None:
        command = EditCommand(edit, self._perform)
        self.undo_stack.push(command)  # runs redo(), which queues edit.do on the store thread
        await self._settle(command, undo=False)

    async def _step(self, undo: bool) -> None:
        stack = self.undo_stack
        if not (stack.canUndo() if undo else stack.canRedo()):
            return
        command = stack.command(stack.index() - 1 if undo else stack.index())
        self._inflight = None
        stack.undo() if undo else stack.redo()
        if isinstance(command, EditCommand):
            await self._settle(command, undo)

    async def _settle(self, command: EditCommand, undo: bool) -> None:
        inflight, self._inflight = self._inflight, None
        if inflight is None:
            return
        try:
            await inflight
        except ShoplistError as error:
            self.message.emit(str(error))
            if not undo:
                command.failed = True  # a no-op from now on
                if (
                    self.undo_stack.index() > 0
                    and self.undo_stack.command(self.undo_stack.index() - 1) is command
                ):
                    self.undo_stack.undo()
            return
        edit = command.edit
        if edit.outcome is not None:
            # An item edit: show its result at once; the whole list and the sidebar's counts follow.
            if edit.list_id != self.current_id:
                await self._show(edit.list_id)
            else:
                self.items_model.show_item(*edit.outcome)
                self.items_refreshed.emit()
            self._coalesce("lists", self._refresh_lists)
            self._coalesce("current", self._refresh_current)
            return
        await self._refresh_lists()
        if self.lists_model.row_of(edit.list_id) >= 0:
            await self._show(edit.list_id, force=True)
        elif self.lists_model.row_of(self.current_id) < 0:
            lists = self.lists_model.lists()
            await self._show(lists[0].id if lists else "")

    # ----- showing and refreshing --------------------------------------------------------------------

    async def _show(self, list_id: str, force: bool = False) -> None:
        if list_id != self.current_id:
            self.current_id = list_id
            self.settings.setValue(LAST_LIST_KEY, list_id)
            self.current_changed.emit(list_id)
        elif not force:
            return
        await self._refresh_current()

    async def _refresh_current(self) -> None:
        list_id = self.current_id
        if not list_id:
            self._set_title("")
            self.items_model.set_items([])
            self.items_refreshed.emit()
            return
        try:
            view = await self.session.call(lambda store: self._views.view(store, list_id))
        except ListNotFoundError:  # deleted elsewhere
            await self._refresh_lists()
            if list_id == self.current_id:
                lists = self.lists_model.lists()
                await self._show(lists[0].id if lists else "")
            return
        if list_id != self.current_id:
            return  # another list was chosen meanwhile
        self._set_title(view.title)
        self.items_model.set_items(view.items)
        self.items_refreshed.emit()
        self._offer([item.name for item in view.items[:HISTORY_LIMIT]])

    async def _refresh_lists(self) -> None:
        self.lists_model.set_lists(await self.session.call(lambda store: store.lists()))

    async def _refresh_sync(self) -> None:
        def read(store: Store) -> Any:
            return store.sync_status(), store.sync_service_running(), store.outbox_size()

        status, running, waiting = await self.session.call(read)
        self.sync_changed.emit(describe_sync(status, running, waiting))

    def _set_title(self, title: str) -> None:
        if title != self.current_title:
            self.current_title = title
            self.title_changed.emit(title)

    def _on_store_changed(self, changed: set[str]) -> None:
        if self.state != "ready":
            return
        lists = changed - {SYNC_STATUS_CHANGED, SYNC_REQUESTED}
        if lists:
            self._coalesce("lists", self._refresh_lists)
        if self.current_id in changed or EVERYTHING in changed:
            self._coalesce("current", self._refresh_current)
        if changed - {SYNC_REQUESTED}:
            self._refresh_sync_soon()

    def _refresh_sync_soon(self) -> None:
        self._coalesce("sync", self._refresh_sync)

    def _coalesce(self, kind: str, refresh: Action) -> None:
        """Run `refresh` now, or once more after the one running: a burst of changes costs two reads."""
        if kind in self._refreshing:
            self._dirty.add(kind)
            return
        self._refreshing.add(kind)

        async def run() -> None:
            try:
                while True:
                    self._dirty.discard(kind)
                    try:
                        await refresh()
                    except ShoplistError as error:
                        self.message.emit(str(error))
                    if kind not in self._dirty:
                        return
            finally:
                self._refreshing.discard(kind)

        self._spawn(run())

    # ----- autocomplete history -----------------------------------------------------------------------

    def _remember(self, name: str) -> None:
        folded = name.casefold()
        self._history = [name, *(known for known in self._history if known.casefold() != folded)]
        del self._history[HISTORY_LIMIT:]
        self.settings.setValue(HISTORY_KEY, self._history)
        self.history_changed.emit(self.history())

    async def _load_history(self) -> None:
        """Offer the item names already in this home, after the ones added from this window. Read on a
        connection and thread of its own (so edits never wait behind it), smallest lists first, up to
        HISTORY_SCAN_ITEMS items; the lists the window shows add theirs as they are shown."""

        def names() -> list[str]:
            with open_store(self.home) as store:
                found: list[str] = []
                for summary in sorted(store.lists(), key=lambda summary: summary.items):
                    if len(found) + summary.items > HISTORY_SCAN_ITEMS:
                        break
                    found += [item.name for item in store.view(summary.id).items]
                return found

        try:
            found = await asyncio.get_running_loop().run_in_executor(None, names)
        except ShoplistError:
            return  # autocomplete is a convenience; the store's trouble shows elsewhere
        self._offer(found)

    def _offer(self, names: list[str]) -> None:
        """Add `names` to the end of the autocomplete history, skipping those it has."""
        seen = {name.casefold() for name in self._history}
        fresh = []
        for name in names:
            if name.casefold() not in seen:
                seen.add(name.casefold())
                fresh.append(name)
        if fresh:
            self._history += fresh
            self.history_changed.emit(self.history())

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        if self.state == "closed":
            coroutine.close()
            return
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
