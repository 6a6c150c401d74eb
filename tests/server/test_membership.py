"""A process's member view: the liveness state machine, its own record (refutation, leaving), and the
records gossip stores in it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from server.keys import generate
from server.membership import Evidence, Liveness, MemberRecord, Membership, next_liveness


def _record(node_id: str, incarnation: int = 1) -> MemberRecord:
    return MemberRecord(node_id, f"tcp://{node_id}:1", f"tcp://{node_id}:2", incarnation)


@given(st.lists(st.sampled_from(list(Evidence)), max_size=12))
def test_fresh_evidence_of_life_always_makes_a_member_alive(history: list[Evidence]) -> None:
    state = Liveness.DEAD
    for evidence in history:
        state = next_liveness(state, evidence)
    assert next_liveness(state, Evidence.HEARTBEAT) is Liveness.ALIVE
    assert next_liveness(state, Evidence.REPLY) is Liveness.ALIVE


def test_suspicion_and_death_follow_the_transition_table() -> None:
    assert next_liveness(Liveness.ALIVE, Evidence.UNREACHABLE) is Liveness.SUSPECT
    assert next_liveness(Liveness.DEAD, Evidence.UNREACHABLE) is Liveness.DEAD  # no resurrection by failure
    assert next_liveness(Liveness.ALIVE, Evidence.DECLARED_DEAD) is Liveness.DEAD
    assert next_liveness(Liveness.SUSPECT, Evidence.DECLARED_DEAD) is Liveness.DEAD


def test_an_unreachable_member_is_skipped_until_it_answers() -> None:
    view = Membership(_record("n1"), 0.0)
    assert not view.is_up("n2")  # never heard of: unknown members count as dead
    view.on_gossip(0.1, {"n2": _record("n2")})
    assert view.is_up("n2")
    view.observe("n2", Evidence.UNREACHABLE, 0.2)
    assert view.liveness("n2") is Liveness.SUSPECT
    view.on_gossip(0.3, {"n2": _record("n2")})  # the same incarnation again: no news of life
    assert view.liveness("n2") is Liveness.SUSPECT
    view.observe("n2", Evidence.REPLY, 0.4)
    assert view.is_up("n2")
    view.observe("n2", Evidence.DECLARED_DEAD, 0.5)
    view.on_gossip(0.6, {"n2": _record("n2", incarnation=2)})  # restarted
    assert view.is_up("n2")


def test_gossip_never_overwrites_our_own_record() -> None:
    view = Membership(_record("n1", incarnation=5), 0.0)
    view.on_gossip(0.0, {"n1": _record("n1", incarnation=9), "n2": _record("n2", incarnation=2)})
    assert view.table["n1"].incarnation == 5
    assert view.table["n2"].incarnation == 2
    assert [record.node_id for record in view.peers()] == ["n2"]
    assert view.node_at("tcp://n2:1") == "n2" and view.node_at("tcp://nobody:1") is None


def test_reincarnating_raises_our_own_incarnation_and_never_lowers_it() -> None:
    view = Membership(_record("n1", incarnation=3), 0.0)
    assert view.reincarnate(7).incarnation == 7
    assert view.reincarnate(5).incarnation == 7
    assert view.table["n1"].incarnation == 7


def test_leaving_raises_the_incarnation_once_and_takes_the_member_out_of_the_ring() -> None:
    leaver = Membership(_record("n2", incarnation=4), 0.0)
    record = leaver.leave()
    assert record.leaving and record.incarnation == 5
    assert leaver.leave().incarnation == 5  # asking twice changes nothing
    view = Membership(_record("n1"), 0.0)
    view.on_gossip(0.0, {"n2": _record("n2"), "n3": _record("n3")})
    assert view.ring_members() == ["n1", "n2", "n3"]
    view.on_gossip(0.2, {"n2": record})
    assert view.ring_members() == ["n1", "n3"]
    assert view.members() == ["n1", "n2", "n3"]  # still known, still watched


def test_a_member_record_carries_its_key_on_the_wire() -> None:
    key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
    record = MemberRecord("n1", "tcp://a:1", "tcp://a:2", 3, leaving=False, key=key)
    assert record.to_wire() == ["n1", "tcp://a:1", "tcp://a:2", 3, False, key]
    assert MemberRecord(*record.to_wire()) == record


def test_a_member_key_is_found_by_either_endpoint_and_counts_as_a_member_key() -> None:
    key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
    view = Membership(MemberRecord("n1", "tcp://a:1", "tcp://a:2", 1), 0.0)
    view.on_gossip(0.1, {"n2": MemberRecord("n2", "tcp://b:1", "tcp://b:2", 1, key=key)})
    assert view.key_at("tcp://b:1") == view.key_at("tcp://b:2") == key
    assert view.key_at("tcp://a:1") is None  # a plain-text member announces no key
    assert view.member_keys() == frozenset({key})


def test_a_member_serving_with_a_revoked_key_is_no_part_of_the_ring_and_its_key_no_member_key() -> None:
    mine, theirs, revoked = generate().public, generate().public, generate().public
    view = Membership(MemberRecord("n1", "tcp://a:1", "tcp://a:2", 1, key=mine), 0.0)
    view.on_gossip(0.1, {"n2": MemberRecord("n2", "tcp://b:1", "tcp://b:2", 1, key=theirs)})
    view.on_gossip(0.1, {"n3": MemberRecord("n3", "tcp://c:1", "tcp://c:2", 1, key=revoked)})
    view.revoked = frozenset({revoked, mine})  # this process never shuts itself out
    assert view.ring_members() == ["n1", "n2"]
    assert view.member_keys() == frozenset({theirs})
    assert [record.node_id for record in view.peers()] == ["n2", "n3"]  # still known, for status
