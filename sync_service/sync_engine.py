"""The sync engine core (sans-io): decides what to push, pull and subscribe and when to retry, from events
the shell feeds it; the shell runs the effects against the local store and the cloud client.

Rules, in one place:
- Local changes arrive as outbox entries. Entries of one list are merged into a single delta and pushed
  as one request; at most one push per list is in flight, at most `max_in_flight` in all.
- An outbox entry is acknowledged (deleted from the outbox) only after the cloud acknowledged the push
  that carried it. A crash anywhere before that re-pushes it on restart; merge is idempotent, so a
  duplicate push changes nothing.
- A failed push or pull puts the engine offline and schedules a retry with exponential backoff and full
  jitter; the first success brings it back online and re-pulls every list (updates may have been missed).
- A list is followed by subscribing first and pulling second (the zguide Clone pattern), so no update
  falls between the snapshot and the subscription.
- Pausing stops new requests; replies to requests already sent are still taken in.
- A published update byte-for-byte equal to a delta this engine pushed is this home's own change coming
  back (the coordinator publishes the delta it stored): the store already holds it, so it is not merged
  again. The last `RECENT_PUSHES` deltas per list are remembered for this.
Time and randomness are inputs: `now` on every event, a `random.Random` for jitter.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

from crdt import ShoppingList

RECENT_PUSHES = 16


@dataclass(frozen=True)
class OutboxEntry:
    """One local change waiting for the cloud: its outbox sequence number, the list, the delta's bytes."""

    seq: int
    list_id: str
    delta: bytes


@dataclass(frozen=True)
class Push:
    """Effect: send `delta` (the merge of the entries `outbox_ids`) to the cloud as request `request`."""

    request: int
    list_id: str
    delta: bytes
    outbox_ids: tuple[int, ...]


@dataclass(frozen=True)
class Pull:
    """Effect: read the cloud's state of `list_id` as request `request`."""

    request: int
    list_id: str


@dataclass(frozen=True)
class Subscribe:
    """Effect: follow live updates of `list_id`."""

    list_id: str


@dataclass(frozen=True)
class Acknowledge:
    """Effect: delete these outbox entries; the cloud holds them durably."""

    outbox_ids: tuple[int, ...]


@dataclass(frozen=True)
class ApplyRemote:
    """Effect: merge the cloud's `state` of `list_id` into the local store."""

    list_id: str
    state: bytes


Effect = Push | Pull | Subscribe | Acknowledge | ApplyRemote


class SyncState(Enum):
    """What the tray icon and the status bar show."""

    SYNCED = "synced"
    SYNCING = "syncing"
    OFFLINE = "offline"
    PAUSED = "paused"


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: retry n waits a random time in [0, min(cap, base * 2**n))."""

    base: float = 0.2
    cap: float = 30.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Return the wait before retry number `attempt` (0 for the first retry)."""
        return rng.uniform(0.0, min(self.cap, self.base * 2 ** min(attempt, 32)))


@dataclass
class _Request:
    list_id: str
    outbox_ids: tuple[int, ...] = ()

    @property
    def is_push(self) -> bool:
        return bool(self.outbox_ids)


@dataclass
class SyncEngine:
    """The engine's state; feed it events, run the effects it returns."""

    rng: random.Random = field(default_factory=random.Random)
    backoff: Backoff = field(default_factory=Backoff)
    max_in_flight: int = 8
    max_batch: int = 256
    lists: set[str] = field(default_factory=set)
    pending: dict[int, OutboxEntry] = field(default_factory=dict)
    online: bool = True
    paused: bool = False
    last_sync: float | None = None
    _in_flight: dict[int, _Request] = field(default_factory=dict)
    _to_pull: set[str] = field(default_factory=set)
    _next_request: int = 1
    _failures: int = 0
    _retry_at: float = 0.0
    _recent_pushes: dict[str, deque[bytes]] = field(default_factory=dict)

    # ----- events -----------------------------------------------------------------------------------

    def start(self, now: float, lists: Iterable[str], outbox: Iterable[OutboxEntry]) -> list[Effect]:
        """The service started: follow every list of the home and push what the outbox holds."""
        effects: list[Effect] = []
        for list_id in lists:
            effects += self._follow(list_id)
        self._take_entries(outbox)
        return effects + self._requests(now)

    def on_list_added(self, now: float, list_id: str) -> list[Effect]:
        """A list appeared in this home (created or joined): follow it."""
        if list_id in self.lists:
            return []
        return self._follow(list_id) + self._requests(now)

    def on_list_removed(self, list_id: str) -> list[Effect]:
        """A list was deleted from this home: stop pulling it (its outbox entries, if any, still go)."""
        self.lists.discard(list_id)
        self._to_pull.discard(list_id)
        return []

    def on_local_changes(self, now: float, entries: Iterable[OutboxEntry]) -> list[Effect]:
        """New outbox entries were written by a local edit."""
        self._take_entries(entries)
        return self._requests(now)

    def on_push_acknowledged(self, now: float, request: int) -> list[Effect]:
        """The cloud durably holds the push `request` (W acks)."""
        sent = self._in_flight.get(request)
        if sent is None or not sent.is_push:
            return self._requests(now)  # not a push of ours: a pull answered this way is still owed
        del self._in_flight[request]
        for outbox_id in sent.outbox_ids:
            self.pending.pop(outbox_id, None)
        return [Acknowledge(sent.outbox_ids), *self._succeeded(now)]

    def on_pull_reply(self, now: float, request: int, state: bytes | None) -> list[Effect]:
        """The cloud answered a pull: `state` is the list's bytes, or None when the cloud has none yet."""
        sent = self._in_flight.get(request)
        if sent is None or sent.is_push:
            return self._requests(now)  # not a pull of ours: a push answered this way is still unacknowledged
        del self._in_flight[request]
        # A list removed while its pull was in flight is not followed any more: applying it would bring
        # it back.
        followed = sent.list_id in self.lists
        effects: list[Effect] = [ApplyRemote(sent.list_id, state)] if state is not None and followed else []
        return effects + self._succeeded(now)

    def on_request_failed(self, now: float, request: int) -> list[Effect]:
        """A push or pull got no answer (timeout, every proxy unreachable): retry later."""
        sent = self._in_flight.pop(request, None)
        if sent is None:
            return []
        if not sent.is_push:
            self._to_pull.add(sent.list_id)
        self.online = False
        self._retry_at = now + self.backoff.delay(self._failures, self.rng)
        self._failures += 1
        return []

    def on_connection_restored(self, now: float) -> list[Effect]:
        """The client reconnected (to the same or another proxy): updates may have been missed, so pull
        every list again."""
        self._to_pull |= self.lists
        return self._requests(now)

    def on_remote_update(self, list_id: str, state: bytes) -> list[Effect]:
        """A subscribed list changed in the cloud."""
        if list_id not in self.lists or state in self._recent_pushes.get(list_id, ()):
            return []
        return [ApplyRemote(list_id, state)]

    def tick(self, now: float) -> list[Effect]:
        """Time passed: send what is due (retries after backoff)."""
        return self._requests(now)

    def sync_now(self, now: float) -> list[Effect]:
        """The user asked to sync: retry at once and pull every list."""
        self._retry_at = now
        self._to_pull |= self.lists
        return self._requests(now)

    def pause(self) -> None:
        """Stop sending requests until `resume`."""
        self.paused = True

    def resume(self, now: float) -> list[Effect]:
        """Send requests again, starting with a pull of every list."""
        self.paused = False
        return self.sync_now(now)

    # ----- queries ----------------------------------------------------------------------------------

    @property
    def state(self) -> SyncState:
        """Return the summary state for icons and status bars."""
        if self.paused:
            return SyncState.PAUSED
        if not self.online:
            return SyncState.OFFLINE
        if self.pending or self._in_flight or self._to_pull:
            return SyncState.SYNCING
        return SyncState.SYNCED

    def retry_at(self) -> float | None:
        """Return when a tick is next useful, or None if nothing waits for time (a probe in flight
        waits for its reply, not for time)."""
        if self.online or self.paused or self._in_flight or not (self.pending or self._to_pull):
            return None
        return self._retry_at

    def pending_by_list(self) -> dict[str, int]:
        """Return list id -> number of local changes the cloud does not hold yet."""
        counts: dict[str, int] = {}
        for entry in self.pending.values():
            counts[entry.list_id] = counts.get(entry.list_id, 0) + 1
        return counts

    # ----- internals --------------------------------------------------------------------------------

    def _follow(self, list_id: str) -> list[Effect]:
        self.lists.add(list_id)
        self._to_pull.add(list_id)
        return [Subscribe(list_id)]

    def _take_entries(self, entries: Iterable[OutboxEntry]) -> None:
        for entry in entries:
            self.pending.setdefault(entry.seq, entry)

    def _succeeded(self, now: float) -> list[Effect]:
        self.last_sync = now
        if not self.online:
            self.online = True
            self._to_pull |= self.lists  # updates published while offline were missed
        self._failures = 0
        return self._requests(now)

    def _requests(self, now: float) -> list[Effect]:
        """Return the pushes and pulls to send now, within the in-flight limit."""
        if self.paused or (not self.online and now < self._retry_at):
            return []
        if not self.online:
            return self._probe()
        effects: list[Effect] = []
        busy = {request.list_id for request in self._in_flight.values()}
        for list_id, entries in self._batches(busy).items():
            if len(self._in_flight) >= self.max_in_flight:
                return effects
            effects.append(self._push(list_id, entries))
            busy.add(list_id)
        for list_id in sorted(self._to_pull - busy):
            if len(self._in_flight) >= self.max_in_flight:
                break
            effects.append(self._pull(list_id))
        return effects

    def _probe(self) -> list[Effect]:
        """Offline and the backoff elapsed: send one request to find out whether the cloud is back."""
        if self._in_flight:
            return []
        batches = self._batches(set())
        if batches:
            list_id, entries = next(iter(batches.items()))
            return [self._push(list_id, entries)]
        if self._to_pull:
            return [self._pull(min(self._to_pull))]
        return []

    def _batches(self, busy: set[str]) -> dict[str, list[OutboxEntry]]:
        batches: dict[str, list[OutboxEntry]] = {}
        for outbox_id in sorted(self.pending):
            entry = self.pending[outbox_id]
            if entry.list_id in busy:
                continue
            batch = batches.setdefault(entry.list_id, [])
            if len(batch) < self.max_batch:
                batch.append(entry)
        return batches

    def _push(self, list_id: str, entries: list[OutboxEntry]) -> Push:
        request = self._new_request(_Request(list_id, tuple(entry.seq for entry in entries)))
        delta = merged_delta(entry.delta for entry in entries)
        self._recent_pushes.setdefault(list_id, deque(maxlen=RECENT_PUSHES)).append(delta)
        return Push(request, list_id, delta, self._in_flight[request].outbox_ids)

    def _pull(self, list_id: str) -> Pull:
        self._to_pull.discard(list_id)
        return Pull(self._new_request(_Request(list_id)), list_id)

    def _new_request(self, request: _Request) -> int:
        number = self._next_request
        self._next_request += 1
        self._in_flight[number] = request
        return number


def merged_delta(deltas: Iterable[bytes]) -> bytes:
    """Return one delta holding every delta in `deltas` (their join), encoded.

    Raises ValueError if one of them is not a valid list encoding.
    """
    encoded = list(deltas)
    if len(encoded) == 1:
        return encoded[0]
    combined = ShoppingList.from_bytes(encoded[0], replica="sync-batch")
    for delta in encoded[1:]:
        combined.merge(ShoppingList.from_bytes(delta, replica="sync-batch"))
    return combined.to_bytes()
