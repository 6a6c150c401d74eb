"""The in-flight budget: never more admitted than the limit, every refusal counted."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.admission import Budget


def test_a_budget_admits_up_to_its_limit_then_refuses_until_a_slot_is_released() -> None:
    budget = Budget(2)
    assert [budget.admit(), budget.admit(), budget.admit()] == [True, True, False]
    budget.release()
    assert budget.admit() is True
    assert budget.status() == {"limit": 2, "in_flight": 2, "refused": 1}


def test_a_limit_below_one_and_a_release_without_an_admit_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Budget(0)
    with pytest.raises(ValueError, match="never admitted"):
        Budget(1).release()


@given(st.integers(1, 20), st.lists(st.booleans(), max_size=200))
def test_in_flight_never_passes_the_limit_and_matches_a_model(limit: int, steps: list[bool]) -> None:
    budget = Budget(limit)
    held, refused = 0, 0
    for admit in steps:
        if admit:
            taken = budget.admit()
            assert taken == (held < limit)
            held += taken
            refused += not taken
        elif held:
            budget.release()
            held -= 1
        assert budget.in_flight == held <= limit
    assert budget.refused == refused
