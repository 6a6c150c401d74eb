"""Gossip membership: deterministic table merges, convergence, and the liveness state machine."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.membership import (
    Evidence,
    Liveness,
    MemberRecord,
    Membership,
    merge_tables,
    next_liveness,
    table_from_wire,
)

RECORDS = st.builds(
    MemberRecord,
    st.sampled_from(["n1", "n2", "n3"]),
    st.sampled_from(["tcp://a:1", "tcp://b:2"]),
    st.just("tcp://p:1"),
    st.integers(0, 3),
    st.integers(0, 3),
)
TABLES = st.lists(RECORDS, max_size=4).map(lambda records: {record.node_id: record for record in records})


@given(TABLES, TABLES, TABLES)
def test_table_merge_is_commutative_associative_and_idempotent(a: dict, b: dict, c: dict) -> None:  # type: ignore[type-arg]
    assert merge_tables(a, b) == merge_tables(b, a)
    assert merge_tables(merge_tables(a, b), c) == merge_tables(a, merge_tables(b, c))
    assert merge_tables(a, a) == a


def _record(node_id: str, incarnation: int = 1) -> MemberRecord:
    return MemberRecord(node_id, f"tcp://{node_id}:1", f"tcp://{node_id}:2", incarnation)


@given(st.integers(0, 10_000))
def test_random_gossip_between_seeds_converges_to_one_table(seed: int) -> None:
    chooser = random.Random(seed)
    names = [f"n{i}" for i in range(6)]
    views = {name: Membership(_record(name), 0.0) for name in names}
    for view in views.values():  # everyone knows only the first node (the seed) at first
        view.on_gossip(0.0, {"n0": views["n0"].me})  # type: ignore[dict-item]
    views["n0"].on_gossip(0.0, {name: view.me for name, view in views.items()})  # type: ignore[misc]
    for round_number in range(30):
        now = round_number * 0.1
        for _name, view in views.items():
            view.tick(now)
            peer = views[chooser.choice(view.members())]
            peer.on_gossip(now, view.table)
            view.on_gossip(now, peer.table)
    tables = [sorted(view.members()) for view in views.values()]
    assert all(table == names for table in tables)


def test_a_quiet_member_becomes_suspect_then_dead_and_comes_back_alive() -> None:
    view = Membership(_record("n1"), 0.0, suspect_after=1.0, dead_after=3.0)
    view.on_gossip(0.0, {"n2": _record("n2")})
    assert view.is_up("n2")
    view.tick(1.5)
    assert view.liveness("n2") is Liveness.SUSPECT
    view.tick(3.5)
    assert view.liveness("n2") is Liveness.DEAD
    view.on_gossip(3.6, {"n2": MemberRecord("n2", "tcp://n2:1", "tcp://n2:2", 2)})  # restarted
    assert view.is_up("n2")


def test_a_failed_send_makes_a_member_suspect_at_once_and_a_reply_clears_it() -> None:
    view = Membership(_record("n1"), 0.0)
    view.on_gossip(0.0, {"n2": _record("n2")})
    view.observe("n2", Evidence.UNREACHABLE, 0.1)
    assert not view.is_up("n2")
    view.observe("n2", Evidence.REPLY, 0.2)
    assert view.is_up("n2")


def test_stale_gossip_about_ourselves_never_overrides_our_record() -> None:
    view = Membership(_record("n1", incarnation=5), 0.0)
    view.on_gossip(0.0, {"n1": _record("n1", incarnation=9)})
    assert view.table["n1"].incarnation == 5


def test_fresh_evidence_always_wins_in_the_transition_table() -> None:
    for state in Liveness:
        assert next_liveness(state, Evidence.HEARTBEAT) is Liveness.ALIVE
    assert next_liveness(Liveness.ALIVE, Evidence.QUIET_DEAD) is Liveness.ALIVE  # must pass through SUSPECT


def test_a_declared_death_moves_alive_and_suspect_members_to_dead_and_life_still_wins() -> None:
    assert next_liveness(Liveness.ALIVE, Evidence.DECLARED_DEAD) is Liveness.DEAD
    assert next_liveness(Liveness.SUSPECT, Evidence.DECLARED_DEAD) is Liveness.DEAD
    assert next_liveness(Liveness.DEAD, Evidence.HEARTBEAT) is Liveness.ALIVE


def test_reincarnating_raises_our_own_incarnation_and_never_lowers_it() -> None:
    view = Membership(_record("n1", incarnation=3), 0.0)
    assert view.reincarnate(7).incarnation == 7
    assert view.reincarnate(5).incarnation == 7
    assert view.table["n1"].incarnation == 7


def test_a_leaving_member_is_gossiped_as_leaving_and_left_out_of_the_ring() -> None:
    leaver = Membership(_record("n2"), 0.0)
    leaver.leave()
    leaver.tick(0.1)
    wire = leaver.wire_table()
    assert table_from_wire(wire)["n2"].leaving
    view = Membership(_record("n1"), 0.0)
    view.on_gossip(0.0, {"n2": _record("n2"), "n3": _record("n3")})
    assert view.ring_members() == ["n1", "n2", "n3"]
    view.on_gossip(0.2, table_from_wire(wire))
    assert view.ring_members() == ["n1", "n3"]
    assert view.members() == ["n1", "n2", "n3"]  # still known, still watched


def test_a_record_without_the_leaving_field_still_decodes() -> None:
    assert not MemberRecord.from_wire(["n1", "tcp://a:1", "tcp://a:2", 1, 0]).leaving
    with pytest.raises(ValueError):
        MemberRecord.from_wire(["n1", "tcp://a:1", "tcp://a:2", 1, 0, "yes"])


KEY = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"


def test_a_member_key_travels_in_gossip_and_is_found_by_either_endpoint() -> None:
    record = MemberRecord("n2", "tcp://b:1", "tcp://b:2", 1, key=KEY)
    assert record.to_wire() == ["n2", "tcp://b:1", "tcp://b:2", 1, 0, False, KEY]
    assert MemberRecord.from_wire(record.to_wire()) == record
    view = Membership(MemberRecord("n1", "tcp://a:1", "tcp://a:2", 1), 0.0)
    view.on_gossip(0.1, {"n2": record})
    assert view.key_at("tcp://b:1") == view.key_at("tcp://b:2") == KEY
    assert view.key_at("tcp://a:1") is None  # a plain-text member announces no key
    assert view.member_keys() == frozenset({KEY})


def test_a_record_with_a_bad_key_is_the_senders_fault() -> None:
    with pytest.raises(ValueError, match="Z85"):
        MemberRecord.from_wire(["n1", "tcp://a:1", "tcp://a:2", 1, 0, False, "not a key"])
