"""The sync engine core against an in-memory home and cloud: random interleavings of local edits, remote
edits, lost requests, lost replies, outages and restarts converge and lose nothing."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from crdt import ShoppingList
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
    merged_delta,
)

LISTS = ("list-a", "list-b")
NAMES = ("Milk", "Eggs", "Bread")


@dataclass
class FakeHome:
    """A local store: one replica per list and an outbox, written in one step as the real store does."""

    lists: dict[str, ShoppingList] = field(
        default_factory=lambda: {name: ShoppingList("home") for name in LISTS}
    )
    outbox: dict[int, OutboxEntry] = field(default_factory=dict)
    next_id: int = 1

    def edit(self, list_id: str, operation: str, name: str, amount: int) -> tuple[OutboxEntry, ShoppingList]:
        shopping = self.lists[list_id]
        if operation == "add":
            delta = shopping.add_item(name, amount)
        elif operation == "set":
            delta = shopping.set_item(name, needed=amount)
        else:
            delta = shopping.remove_item(name)
        entry = OutboxEntry(self.next_id, list_id, delta.to_bytes())
        self.outbox[entry.seq] = entry
        self.next_id += 1
        return entry, delta


@dataclass
class FakeCloud:
    """The ring, seen from a client: a durable state per list."""

    lists: dict[str, ShoppingList] = field(default_factory=dict)

    def write(self, list_id: str, delta: bytes) -> None:
        self.lists.setdefault(list_id, ShoppingList("cloud")).merge(ShoppingList.from_bytes(delta))

    def read(self, list_id: str) -> bytes | None:
        state = self.lists.get(list_id)
        return state.to_bytes() if state is not None else None


@dataclass
class World:
    """Runs the engine's effects against the fakes; requests wait in `network` until delivered or lost."""

    home: FakeHome = field(default_factory=FakeHome)
    cloud: FakeCloud = field(default_factory=FakeCloud)
    engine: SyncEngine = field(default_factory=lambda: SyncEngine(rng=random.Random(0)))
    network: list[Push | Pull] = field(default_factory=list)
    subscribed: set[str] = field(default_factory=set)
    now: float = 0.0
    down: bool = False  # an outage: every request fails and no update is published to this home

    def run(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Push | Pull):
                self.network.append(effect)
            elif isinstance(effect, Subscribe):
                self.subscribed.add(effect.list_id)
            elif isinstance(effect, Acknowledge):
                for outbox_id in effect.outbox_ids:
                    del self.home.outbox[outbox_id]
            elif isinstance(effect, ApplyRemote):
                self.home.lists[effect.list_id].merge(ShoppingList.from_bytes(effect.state))

    def deliver(self, index: int, *, reply_lost: bool = False) -> None:
        if self.down:
            self.lose(index)
            return
        request = self.network.pop(index)
        if isinstance(request, Push):
            self.cloud.write(request.list_id, request.delta)
            self.publish(request.list_id, request.delta)
            if not reply_lost:
                self.run(self.engine.on_push_acknowledged(self.now, request.request))
                return
        elif not reply_lost:
            self.run(self.engine.on_pull_reply(self.now, request.request, self.cloud.read(request.list_id)))
            return
        self.run(self.engine.on_request_failed(self.now, request.request))

    def lose(self, index: int) -> None:
        request = self.network.pop(index)
        self.run(self.engine.on_request_failed(self.now, request.request))

    def publish(self, list_id: str, delta: bytes) -> None:
        """The coordinator publishes the delta it stored, as the real one does."""
        if list_id in self.subscribed and not self.down:
            self.run(self.engine.on_remote_update(list_id, delta))

    def restart(self) -> None:
        """The sync process dies (requests in the air die with its sockets) and starts again."""
        self.network.clear()
        self.subscribed.clear()
        self.engine = SyncEngine(rng=random.Random(1))
        self.run(self.engine.start(self.now, LISTS, sorted(self.home.outbox.values(), key=lambda e: e.seq)))

    def toggle_outage(self) -> None:
        self.down = not self.down
        if not self.down:
            self.run(self.engine.on_connection_restored(self.now))

    def settle(self) -> None:
        """Heal everything, let time pass and deliver until nothing is left to do (no manual sync)."""
        if self.down:
            self.toggle_outage()
        for _ in range(1000):
            if not self.network:
                self.now += 1000.0
                self.run(self.engine.tick(self.now))
                if not self.network:
                    return
            self.deliver(0)
        raise AssertionError("the engine did not settle")


actions = st.lists(
    st.one_of(
        st.tuples(
            st.just("edit"),
            st.sampled_from(LISTS),
            st.sampled_from(("add", "set", "remove")),
            st.sampled_from(NAMES),
            st.integers(0, 9),
        ),
        st.tuples(st.just("remote"), st.sampled_from(LISTS), st.sampled_from(NAMES), st.integers(1, 9)),
        st.tuples(st.just("deliver"), st.integers(0, 10)),
        st.tuples(st.just("reply_lost"), st.integers(0, 10)),
        st.tuples(st.just("lose"), st.integers(0, 10)),
        st.tuples(st.just("wait"), st.floats(0.0, 60.0)),
        st.tuples(st.just("restart")),
        st.tuples(st.just("outage")),
        st.tuples(st.just("deliver_all")),
    ),
    max_size=60,
)


@settings(deadline=None)
@given(actions)
def test_random_interleavings_converge_and_lose_no_edit(script: list[tuple[Any, ...]]) -> None:
    world = World()
    world.run(world.engine.start(world.now, LISTS, []))
    truth = {list_id: ShoppingList("truth") for list_id in LISTS}
    remote_writer = {list_id: ShoppingList("other-home") for list_id in LISTS}
    for action in script:
        match action:
            case ("edit", list_id, operation, name, amount):
                entry, delta = world.home.edit(list_id, operation, name, amount)
                truth[list_id].merge(delta)
                world.run(world.engine.on_local_changes(world.now, [entry]))
            case ("remote", list_id, name, amount):
                delta = remote_writer[list_id].add_item(name, amount)
                truth[list_id].merge(delta)
                world.cloud.write(list_id, delta.to_bytes())
                world.publish(list_id, delta.to_bytes())
            case ("deliver" | "reply_lost", index) if world.network:
                world.deliver(index % len(world.network), reply_lost=action[0] == "reply_lost")
            case ("lose", index) if world.network:
                world.lose(index % len(world.network))
            case ("wait", seconds):
                world.now += seconds
                world.run(world.engine.tick(world.now))
            case ("restart",):
                world.restart()
            case ("outage",):
                world.toggle_outage()
            case ("deliver_all",):
                while world.network:
                    world.deliver(0)
    world.settle()
    assert world.home.outbox == {}
    assert world.engine.state is SyncState.SYNCED
    for list_id in LISTS:
        cloud = world.cloud.lists.get(list_id, ShoppingList("cloud"))
        assert cloud == truth[list_id]
        assert world.home.lists[list_id] == truth[list_id]


def _started(lists: tuple[str, ...] = LISTS) -> tuple[SyncEngine, list[Effect]]:
    engine = SyncEngine(rng=random.Random(0))
    return engine, engine.start(0.0, lists, [])


def test_a_list_is_subscribed_before_it_is_pulled() -> None:
    _, effects = _started(("list-a",))
    assert [type(effect) for effect in effects] == [Subscribe, Pull]


def test_entries_of_one_list_travel_as_one_merged_push() -> None:
    engine, _ = _started(())
    home = FakeHome()
    entries = [home.edit("list-a", "add", name, 2)[0] for name in NAMES]
    (push,) = engine.on_local_changes(0.0, entries)
    assert isinstance(push, Push)
    assert push.outbox_ids == (1, 2, 3)
    assert ShoppingList.from_bytes(push.delta).items() == {"Milk": (2, 0), "Eggs": (2, 0), "Bread": (2, 0)}


def test_outbox_entries_are_acknowledged_only_after_the_cloud_acknowledged_them() -> None:
    engine, _ = _started(())
    entry, _ = FakeHome().edit("list-a", "add", "Milk", 1)
    (push,) = engine.on_local_changes(0.0, [entry])
    assert isinstance(push, Push)
    assert engine.on_request_failed(0.0, push.request) == []
    assert engine.pending == {entry.seq: entry}
    effects = engine.tick(1000.0)
    (retry,) = [effect for effect in effects if isinstance(effect, Push)]
    assert Acknowledge((entry.seq,)) in engine.on_push_acknowledged(1000.0, retry.request)
    assert engine.pending == {}


def test_a_failure_takes_the_engine_offline_until_the_backoff_elapses() -> None:
    engine, effects = _started(("list-a",))
    (pull,) = [effect for effect in effects if isinstance(effect, Pull)]
    engine.on_request_failed(10.0, pull.request)
    assert engine.state is SyncState.OFFLINE
    retry_at = engine.retry_at()
    assert retry_at is not None and 10.0 <= retry_at <= 10.0 + engine.backoff.base
    assert engine.tick(retry_at - 0.001) == []
    assert [type(effect) for effect in engine.tick(retry_at)] == [Pull]


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    engine = SyncEngine(rng=random.Random(0))
    ceilings = [engine.backoff.base * 2**attempt for attempt in range(12)]
    for attempt, ceiling in enumerate(ceilings):
        assert 0.0 <= engine.backoff.delay(attempt, engine.rng) <= min(engine.backoff.cap, ceiling)


def test_coming_back_online_pulls_every_list_again() -> None:
    engine, effects = _started(LISTS)
    pulls = [effect for effect in effects if isinstance(effect, Pull)]
    for pull in pulls:
        engine.on_request_failed(0.0, pull.request)
    probe = engine.tick(1000.0)
    assert [type(effect) for effect in probe] == [Pull]
    after = engine.on_pull_reply(1000.0, probe[0].request, None)
    assert sorted(effect.list_id for effect in after if isinstance(effect, Pull)) == sorted(LISTS)


def test_paused_engine_sends_nothing_until_resumed() -> None:
    engine, _ = _started(())
    engine.pause()
    entry, _ = FakeHome().edit("list-a", "add", "Milk", 1)
    assert engine.on_local_changes(0.0, [entry]) == []
    assert engine.state is SyncState.PAUSED
    assert any(isinstance(effect, Push) for effect in engine.resume(1.0))


def test_in_flight_requests_stay_within_the_limit() -> None:
    engine = SyncEngine(rng=random.Random(0), max_in_flight=3)
    effects = engine.start(0.0, [f"list-{n}" for n in range(10)], [])
    assert sum(isinstance(effect, Pull) for effect in effects) == 3


def test_updates_of_lists_not_in_this_home_are_ignored() -> None:
    engine, _ = _started(("list-a",))
    assert engine.on_remote_update("someone-else", b"state") == []


def test_a_pull_answered_after_its_list_was_removed_is_not_applied() -> None:
    # Found by the sync engine's fuzz test: applying it would bring the removed list back.
    engine, started = _started(("list-a",))
    (pull,) = [effect for effect in started if isinstance(effect, Pull)]
    engine.on_list_removed("list-a")
    state = ShoppingList("cloud").add_item("Milk").to_bytes()
    assert not any(
        isinstance(effect, ApplyRemote) for effect in engine.on_pull_reply(0.0, pull.request, state)
    )


def test_the_echo_of_an_own_push_is_not_merged_again_but_other_changes_are() -> None:
    engine, started = _started(("list-a",))
    (pull,) = [effect for effect in started if isinstance(effect, Pull)]
    engine.on_pull_reply(0.0, pull.request, None)
    entry, _ = FakeHome().edit("list-a", "add", "Milk", 1)
    (push,) = engine.on_local_changes(0.0, [entry])
    assert isinstance(push, Push)
    engine.on_push_acknowledged(0.0, push.request)
    assert engine.on_remote_update("list-a", push.delta) == []
    other = ShoppingList("other-home").add_item("Milk", 1).to_bytes()
    assert engine.on_remote_update("list-a", other) == [ApplyRemote("list-a", other)]


def test_merged_delta_of_one_entry_is_that_entry() -> None:
    delta = ShoppingList("home").add_item("Milk", 1).to_bytes()
    assert merged_delta([delta]) == delta


def test_a_restored_connection_pulls_every_list_again() -> None:
    engine, effects = _started(LISTS)
    for pull in effects:
        if isinstance(pull, Pull):
            engine.on_pull_reply(0.0, pull.request, None)
    again = engine.on_connection_restored(5.0)
    assert sorted(effect.list_id for effect in again if isinstance(effect, Pull)) == sorted(LISTS)
