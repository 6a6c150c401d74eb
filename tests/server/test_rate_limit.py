"""The per-connection token buckets: bursts, refill with time, separate connections, the bounded table."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.rate_limit import RateLimiter


def test_a_burst_is_admitted_and_the_next_request_refused() -> None:
    limiter = RateLimiter(rate=1.0, burst=3.0)
    assert [limiter.admit("a", 0.0) for _ in range(4)] == [True, True, True, False]
    assert limiter.refused == 1
    assert limiter.retry_after("a") == pytest.approx(1.0)


def test_tokens_come_back_with_time_up_to_the_burst() -> None:
    limiter = RateLimiter(rate=2.0, burst=2.0)
    assert limiter.admit("a", 0.0) and limiter.admit("a", 0.0)
    assert not limiter.admit("a", 0.1)
    assert limiter.admit("a", 0.6)
    assert [limiter.admit("a", 100.0) for _ in range(3)] == [True, True, False]


def test_one_connection_at_its_limit_leaves_others_their_own_budget() -> None:
    limiter = RateLimiter(rate=1.0, burst=1.0)
    assert limiter.admit("hostile", 0.0)
    assert not limiter.admit("hostile", 0.0)
    assert limiter.admit("friend", 0.0)


def test_the_table_forgets_the_least_recently_used_connection() -> None:
    limiter = RateLimiter(rate=1.0, burst=1.0, max_buckets=2)
    limiter.admit("a", 0.0)
    limiter.admit("b", 0.0)
    assert not limiter.admit("a", 0.0)  # a is now the most recently used
    limiter.admit("c", 0.0)  # b goes
    assert len(limiter) == 2
    assert not limiter.admit("a", 0.0)  # a was kept, still empty
    assert limiter.admit("b", 0.0)  # b comes back full


def test_nonsense_limits_are_refused() -> None:
    for rate, burst, buckets in ((0.0, 1.0, 1), (1.0, 0.5, 1), (1.0, 1.0, 0)):
        with pytest.raises(ValueError):
            RateLimiter(rate, burst, buckets)


@given(
    st.floats(0.1, 100.0),
    st.integers(1, 50),
    st.lists(st.floats(0.0, 10.0), min_size=1, max_size=200),
)
def test_never_more_than_the_burst_plus_the_refill_is_admitted(
    rate: float, burst: int, gaps: list[float]
) -> None:
    limiter = RateLimiter(rate=rate, burst=float(burst), max_buckets=1)
    now, admitted = 0.0, 0
    for gap in gaps:
        now += gap
        admitted += limiter.admit("a", now)
    assert admitted <= burst + rate * now + 1e-6
    assert len(limiter) == 1
