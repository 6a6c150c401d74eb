"""Fuzzing the sync engine core: replies to requests never sent, of the wrong kind, duplicated and
replayed, garbage states and updates for lists nobody follows never raise, never drop an outbox entry
the cloud did not acknowledge, and never apply anything to a list the home does not follow."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from crdt import ShoppingList
from sync_service.sync_engine import Acknowledge, ApplyRemote, OutboxEntry, Pull, Push, SyncEngine
from tests.hostile import fuzzing

LISTS = ("list-a", "list-b", "list-c")
DELTAS = [ShoppingList("home").add_item(name).to_bytes() for name in ("Milk", "Eggs", "Tea")]
STATES = st.sampled_from([*DELTAS, b"", b"\x00garbage", b"\x96\xa2SL\x02"]) | st.binary(max_size=20)
REQUESTS = st.integers(-3, 12) | st.sampled_from([0, 2**63, -(2**63)])
EVENTS = st.lists(
    st.one_of(
        st.tuples(st.just("ack"), REQUESTS),
        st.tuples(st.just("pulled"), REQUESTS, st.none() | STATES),
        st.tuples(st.just("failed"), REQUESTS),
        st.tuples(st.just("update"), st.sampled_from([*LISTS, "stranger", ""]), STATES),
        st.tuples(st.just("local"), st.sampled_from(LISTS), st.sampled_from(DELTAS)),
        st.tuples(st.just("restored")),
        st.tuples(st.just("tick"), st.floats(0, 40)),
        st.tuples(st.just("removed"), st.sampled_from(LISTS)),
    ),
    max_size=40,
)


@fuzzing(150)
@given(events=EVENTS)
def test_hostile_and_replayed_events_never_lose_an_unacknowledged_change(
    events: list[tuple[Any, ...]],
) -> None:
    engine = SyncEngine()
    now, seq = 0.0, 0
    pushes: dict[int, tuple[int, ...]] = {}  # request -> outbox ids, for pushes still unanswered
    pulls: set[int] = set()
    acknowledged: set[int] = set()

    def run(effects: list[Any], acked_request: int | None = None) -> None:
        for effect in effects:
            if isinstance(effect, Push):
                pushes[effect.request] = effect.outbox_ids
            elif isinstance(effect, Pull):
                pulls.add(effect.request)
            elif isinstance(effect, Acknowledge):
                assert acked_request is not None and effect.outbox_ids == pushes.pop(acked_request)
                acknowledged.update(effect.outbox_ids)
            elif isinstance(effect, ApplyRemote):
                assert effect.list_id in engine.lists

    run(engine.start(now, LISTS[:2], []))
    for event in events:
        now += 0.01
        if event[0] == "ack":
            run(engine.on_push_acknowledged(now, event[1]), acked_request=event[1])
        elif event[0] == "pulled":
            run(engine.on_pull_reply(now, event[1], event[2]))
            pulls.discard(event[1])
        elif event[0] == "failed":
            run(engine.on_request_failed(now, event[1]))
            pushes.pop(event[1], None)
            pulls.discard(event[1])
        elif event[0] == "update":
            run(engine.on_remote_update(event[1], event[2]))
        elif event[0] == "local":
            seq += 1
            run(engine.on_local_changes(now, [OutboxEntry(seq, event[1], event[2])]))
        elif event[0] == "restored":
            run(engine.on_connection_restored(now))
        elif event[0] == "tick":
            now += event[1]
            run(engine.tick(now))
        else:
            run(engine.on_list_removed(event[1]))
        assert set(engine.pending) == set(range(1, seq + 1)) - acknowledged


def test_an_acknowledgement_of_a_pull_leaves_the_pull_in_flight() -> None:
    engine = SyncEngine()
    [_, pull] = engine.start(0.0, ["list-a"], [])
    assert isinstance(pull, Pull)
    assert engine.on_push_acknowledged(0.1, pull.request) == []
    assert engine.on_pull_reply(0.2, pull.request, DELTAS[0])[0] == ApplyRemote("list-a", DELTAS[0])


def test_a_pull_reply_to_a_push_leaves_the_push_in_flight() -> None:
    engine = SyncEngine()
    engine.start(0.0, [], [])
    [push] = engine.on_local_changes(0.0, [OutboxEntry(1, "list-a", DELTAS[0])])
    assert isinstance(push, Push)
    assert engine.on_pull_reply(0.1, push.request, DELTAS[1]) == []
    assert engine.on_push_acknowledged(0.2, push.request)[0] == Acknowledge((1,))
