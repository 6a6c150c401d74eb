"""Quorum accounting under dropped, duplicated and late replies."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from server.quorum import Outcome, Quorum

NODES = ["a", "b", "c"]
REPLIES = st.lists(st.tuples(st.sampled_from([*NODES, "stranger"]), st.booleans()), max_size=12)


@given(REPLIES)
def test_the_outcome_matches_distinct_successes_and_never_flips(replies: list[tuple[str, bool]]) -> None:
    quorum = Quorum(2, set(NODES))
    first_decision = None
    for node, ok in replies:
        outcome = quorum.success(node) if ok else quorum.failure(node)
        if first_decision is None and outcome is not Outcome.PENDING:
            first_decision = outcome
        assert first_decision is None or outcome is first_decision
    if len(quorum.succeeded) >= 2 and first_decision is Outcome.REACHED:
        assert quorum.outcome is Outcome.REACHED
    assert quorum.succeeded <= set(NODES)


def test_a_duplicated_reply_counts_once() -> None:
    quorum = Quorum(2, set(NODES))
    assert quorum.success("a") is Outcome.PENDING
    assert quorum.success("a") is Outcome.PENDING
    assert quorum.success("b") is Outcome.REACHED


def test_quorum_fails_as_soon_as_too_few_can_still_answer() -> None:
    quorum = Quorum(2, set(NODES))
    quorum.failure("a")
    assert quorum.failure("b") is Outcome.FAILED


def test_a_stand_in_can_complete_the_quorum_for_a_failed_replica() -> None:
    quorum = Quorum(2, set(NODES))
    quorum.failure("b")
    quorum.failure("c")
    quorum.add_candidate("d")
    assert quorum.outcome is Outcome.FAILED  # decided already: a late stand-in cannot flip it
    fresh = Quorum(2, set(NODES))
    fresh.failure("b")
    fresh.add_candidate("d")
    fresh.success("a")
    assert fresh.success("d") is Outcome.REACHED


def test_late_replies_after_the_decision_are_recorded_but_change_nothing() -> None:
    quorum = Quorum(2, set(NODES))
    quorum.success("a")
    quorum.success("b")
    assert quorum.failure("c") is Outcome.REACHED
    assert quorum.settled()
