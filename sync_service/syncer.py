"""The sync engine's asyncio shell: feeds the engine events from the local store (LISTEN), the cloud client
(replies and published updates) and the clock, and carries out its effects. Store calls run on one
worker thread (psycopg is blocking); a second thread waits for the store's notifications."""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from crdt import ShoppingList
from sync_service.change_summary import Notification, NotificationGrouper, items_change
from sync_service.client import CloudUnavailable
from sync_service.store import SYNC_REQUESTED, SYNC_STATUS_CHANGED, Store, SyncStatus
from sync_service.store import OutboxEntry as StoredOutboxEntry
from sync_service.sync_engine import (
    Acknowledge,
    ApplyRemote,
    Effect,
    OutboxEntry,
    Pull,
    Push,
    Subscribe,
    SyncEngine,
    SyncState,
)

log = logging.getLogger("shoplist.sync")
T = TypeVar("T")
LISTEN_POLL_SECONDS = 0.5
IDLE_TICK_SECONDS = 5.0
OUTBOX_PAGE = 1000


class CloudClient(Protocol):
    """What the syncer needs of the cloud client (`sync_service.client`)."""

    async def write(self, list_id: str, delta: bytes) -> None:
        """Store `delta` durably in the cloud (W acks). Raises CloudUnavailable."""

    async def read(self, list_id: str) -> bytes | None:
        """Return the cloud's state of the list, or None if it holds none. Raises CloudUnavailable."""

    async def subscribe(self, list_id: str) -> None:
        """Start receiving the list's published changes."""

    async def next_update(self) -> tuple[str, bytes] | None:
        """Wait for and return the next published change: (list id, merged delta or state); or None
        when the subscription moved to another proxy, so changes may have been missed."""

    def describe(self) -> str:
        """Return a short description for people: the proxy in use, or the ones being tried."""


@dataclass(frozen=True)
class _Event:
    kind: str  # local, acked, pulled, failed, update, reconnected, sync, pause, resume, tick, stop
    request: int = 0
    list_id: str = ""
    data: bytes | None = None


class Syncer:
    """Keeps one home in sync with the cloud until `stop()`.

    `open_store` opens a new Store on the home (called once per worker thread). `on_status` and
    `on_notification` run on the event loop whenever the status changes or a burst of other people's
    edits is over.
    """

    def __init__(
        self,
        open_store: Callable[[], Store],
        client: CloudClient,
        *,
        on_status: Callable[[SyncStatus], None] | None = None,
        on_notification: Callable[[Notification], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._open_store = open_store
        self._client = client
        self._on_status = on_status or (lambda status: None)
        self._on_notification = on_notification or (lambda notification: None)
        self._clock = clock
        self.engine = SyncEngine(rng=rng or random.Random())
        self._grouper = NotificationGrouper()
        self._store_thread = ThreadPoolExecutor(1, thread_name_prefix="shoplist-store")
        self._store: Store | None = None
        self._events: asyncio.Queue[_Event] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = threading.Event()
        self._known_lists: set[str] = set()
        self._status: SyncStatus | None = None
        self._failure = ""
        self._refused = False  # the last failure was the cloud refusing, not the cloud being away
        self._tasks: set[asyncio.Task[Any]] = set()

    # ----- control, from the event loop's thread ---------------------------------------------------

    def sync_now(self) -> None:
        """Push and pull everything now, without waiting for a backoff."""
        self._events.put_nowait(_Event("sync"))

    def pause(self) -> None:
        """Stop talking to the cloud until `resume` (local edits keep collecting in the outbox)."""
        self._events.put_nowait(_Event("pause"))

    def resume(self) -> None:
        """Talk to the cloud again."""
        self._events.put_nowait(_Event("resume"))

    def stop(self) -> None:
        """End `run` (requests in flight are abandoned; their outbox entries stay for next time)."""
        self._stopping.set()
        self._events.put_nowait(_Event("stop"))

    @property
    def status(self) -> SyncStatus | None:
        """Return the last status reported."""
        return self._status

    # ----- running ------------------------------------------------------------------------------------

    async def run(self, until: Callable[[Syncer], bool] | None = None) -> None:
        """Sync until `stop()` is called or `until(self)` holds after an event. Raises the store's
        EnvironmentProblem if the store cannot be opened."""
        self._loop = asyncio.get_running_loop()
        self._store = await self._in_store(self._open_store)
        # LISTEN before the outbox is first read (subscribe, then snapshot: the zguide Clone pattern), so
        # an edit committed in between is noticed; then the connection belongs to the listener thread.
        watcher = await self._in_store(self._open_store)
        try:
            await self._in_store(watcher.listen)
        except BaseException:
            await self._in_store(watcher.close)
            raise
        listener = threading.Thread(target=self._listen, args=(watcher,), name="shoplist-listen", daemon=True)
        listener.start()
        try:
            await self._start()
            self._spawn(self._watch_updates())
            while not self._stopping.is_set():
                if until is not None and until(self):
                    return
                await self._handle(await self._next_event())
        finally:
            self._stopping.set()
            for task in self._tasks:
                task.cancel()
            await self._in_store(self._store.close)
            self._store_thread.shutdown(wait=False)

    async def _start(self) -> None:
        summaries = await self._in_store(self._store_or_fail().lists)
        store = self._store_or_fail()
        outbox = await self._in_store(lambda: whole_outbox_after(store, 0))
        self._known_lists = {summary.id for summary in summaries}
        entries = [OutboxEntry(entry.seq, entry.list_id, entry.delta) for entry in outbox]
        await self._run(self.engine.start(self._clock(), sorted(self._known_lists), entries))

    async def _next_event(self) -> _Event:
        if not self._events.empty():
            return self._events.get_nowait()
        wake_at = [when for when in (self.engine.retry_at(), self._grouper.next_due()) if when is not None]
        timeout = max(0.0, min(wake_at) - self._clock()) if wake_at else IDLE_TICK_SECONDS
        try:
            return await asyncio.wait_for(self._events.get(), timeout)
        except TimeoutError:
            return _Event("tick")

    async def _handle(self, event: _Event) -> None:
        now = self._clock()
        effects: list[Effect] = []
        if event.kind == "local":
            effects = await self._local_changes(now)
        elif event.kind == "acked":
            self._failure = ""
            effects = self.engine.on_push_acknowledged(now, event.request)
        elif event.kind == "pulled":
            self._failure = ""
            effects = self.engine.on_pull_reply(now, event.request, event.data)
        elif event.kind == "failed":
            effects = self.engine.on_request_failed(now, event.request)
        elif event.kind == "update":
            effects = self.engine.on_remote_update(event.list_id, event.data or b"")
        elif event.kind == "reconnected":
            effects = self.engine.on_connection_restored(now)
        elif event.kind == "sync":
            effects = self.engine.sync_now(now)
        elif event.kind == "pause":
            self.engine.pause()
        elif event.kind == "resume":
            effects = self.engine.resume(now)
        elif event.kind == "tick":
            effects = self.engine.tick(now)
        await self._run(effects)
        for notification in self._grouper.due(now):
            self._on_notification(notification)
        await self._report_status()

    async def _local_changes(self, now: float) -> list[Effect]:
        store = self._store_or_fail()
        # One trip to the store thread for both reads: this is on the path of every local edit. The whole
        # outbox is read, not just entries past the last one seen: two writers' transactions can commit
        # out of sequence order, and the outbox holds only what the cloud has not acknowledged yet.
        summaries, outbox = await self._in_store(lambda: (store.lists(), whole_outbox_after(store, 0)))
        fresh = [entry for entry in outbox if entry.seq not in self.engine.pending]
        current = {summary.id for summary in summaries}
        effects: list[Effect] = []
        for list_id in sorted(current - self._known_lists):
            effects += self.engine.on_list_added(now, list_id)
        for list_id in self._known_lists - current:
            effects += self.engine.on_list_removed(list_id)
        self._known_lists = current
        if fresh:
            entries = [OutboxEntry(entry.seq, entry.list_id, entry.delta) for entry in fresh]
            effects += self.engine.on_local_changes(now, entries)
        return effects

    # ----- effects --------------------------------------------------------------------------------------

    async def _run(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Push):
                self._spawn(self._push(effect))
            elif isinstance(effect, Pull):
                self._spawn(self._pull(effect))
            elif isinstance(effect, Subscribe):
                await self._client.subscribe(effect.list_id)
            elif isinstance(effect, Acknowledge):
                await self._in_store(functools.partial(self._store_or_fail().acknowledge, effect.outbox_ids))
            elif isinstance(effect, ApplyRemote):
                await self._apply_remote(effect.list_id, effect.state)

    async def _push(self, push: Push) -> None:
        log.debug("pushing %d change(s) to list %s", len(push.outbox_ids), push.list_id)
        try:
            await self._client.write(push.list_id, push.delta)
        except Exception as error:
            self._failed(push.request, error)
        else:
            self._events.put_nowait(_Event("acked", push.request))

    async def _pull(self, pull: Pull) -> None:
        log.debug("pulling list %s", pull.list_id)
        try:
            state = await self._client.read(pull.list_id)
        except Exception as error:
            self._failed(pull.request, error)
        else:
            self._events.put_nowait(_Event("pulled", pull.request, pull.list_id, state))

    def _failed(self, request: int, error: Exception) -> None:
        """A request failed: unreachable cloud (expected; retried) or a refusal (logged; retried too,
        since dropping the change would lose it)."""
        self._refused = not isinstance(error, CloudUnavailable)
        if self._refused:
            log.error("the cloud refused a request: %s: %s", type(error).__name__, error)
        self._failure = str(error) or type(error).__name__
        self._events.put_nowait(_Event("failed", request))

    async def _watch_updates(self) -> None:
        while True:
            update = await self._client.next_update()
            if update is None:
                log.debug("the subscription moved to another proxy")
                self._events.put_nowait(_Event("reconnected"))
            else:
                log.debug("published change to list %s", update[0])
                self._events.put_nowait(_Event("update", list_id=update[0], data=update[1]))

    async def _apply_remote(self, list_id: str, data: bytes) -> None:
        try:
            remote = ShoppingList.from_bytes(data)
        except ValueError as error:
            log.warning("ignored a damaged state of list %s from the cloud: %s", list_id, error)
            return
        store = self._store_or_fail()
        merged = await self._in_store(lambda: store.merge_remote(list_id, remote))
        if not merged.created:
            change = items_change(merged.before, merged.after, merged.title_before, merged.title)
            self._grouper.on_change(self._clock(), list_id, merged.title, change)

    # ----- status -------------------------------------------------------------------------------------

    async def _report_status(self) -> None:
        status = self._current_status()
        if status == self._status:
            return
        self._status = status
        try:
            await self._in_store(lambda: self._store_or_fail().record_sync_status(status))
        except Exception as error:  # the status is advisory; the store's outage shows elsewhere
            log.warning("could not record the sync status: %s", error)
        self._on_status(status)

    def _current_status(self) -> SyncStatus:
        state = self.engine.state
        pending = len(self.engine.pending)
        last_sync = None
        if self.engine.last_sync is not None:
            seconds_ago = max(0.0, self._clock() - self.engine.last_sync)
            last_sync = datetime.now(UTC) - timedelta(seconds=seconds_ago)
        shown = state.value
        if state is SyncState.OFFLINE:
            detail = self._failure or "the cloud does not answer"
            if self._refused:
                shown, detail = "error", f"the cloud refused a change: {detail}"
        else:
            detail = self._client.describe()
        return SyncStatus(shown, pending, detail, _to_second(last_sync))

    # ----- threads --------------------------------------------------------------------------------------

    def _listen(self, listener: Store) -> None:
        """On the listener thread: wake the loop whenever `listener` (LISTENing) reports a change."""
        try:
            while not self._stopping.is_set():
                changed = listener.wait_for_change(LISTEN_POLL_SECONDS)
                if self._loop is None:
                    continue
                if changed - {SYNC_STATUS_CHANGED, SYNC_REQUESTED}:
                    self._loop.call_soon_threadsafe(self._events.put_nowait, _Event("local"))
                if SYNC_REQUESTED in changed:  # a window's "Sync now"
                    self._loop.call_soon_threadsafe(self._events.put_nowait, _Event("sync"))
        except Exception as error:
            if not self._stopping.is_set():
                log.error("stopped watching the local store: %s", error)
        finally:
            listener.close()

    async def _in_store(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._store_thread, call)

    def _store_or_fail(self) -> Store:
        if self._store is None:
            raise RuntimeError("the syncer is not running")
        return self._store

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def whole_outbox_after(store: Store, seq: int) -> list[StoredOutboxEntry]:
    """Return every outbox entry after `seq`, oldest first, read page by page: entries left beyond one
    page would otherwise wait for the next local edit to be noticed."""
    entries: list[StoredOutboxEntry] = []
    while True:
        page = store.outbox(after=seq, limit=OUTBOX_PAGE)
        entries += page
        if len(page) < OUTBOX_PAGE:
            return entries
        seq = page[-1].seq


def _to_second(moment: datetime | None) -> datetime | None:
    return moment.replace(microsecond=0) if moment is not None else None
