"""The log throttle: the first event gets a line, then at most one line per interval, counting all."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.log_throttle import Throttle


def test_the_first_event_is_logged_and_the_next_ones_are_counted_into_one_line_per_interval() -> None:
    throttle = Throttle(10.0)
    assert throttle.event(100.0) == 1
    assert [throttle.event(100.0 + t) for t in (1, 2, 9.9)] == [0, 0, 0]
    assert throttle.event(110.0) == 4  # the three held back and this one
    assert throttle.event(111.0) == 0


def test_flush_logs_what_was_held_back_once_the_interval_passed() -> None:
    throttle = Throttle(10.0)
    assert throttle.flush(0.0) == 0  # nothing happened
    throttle.event(0.0)
    throttle.event(1.0)
    assert throttle.flush(5.0) == 0  # too soon
    assert throttle.flush(10.0) == 1
    assert throttle.flush(30.0) == 0  # nothing since
    assert throttle.event(30.0) == 1  # quiet for an interval: logged at once


def test_an_interval_that_is_not_positive_is_refused() -> None:
    for every in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="positive"):
            Throttle(every)


@given(st.lists(st.floats(0, 5), max_size=300), st.floats(0.5, 10))
def test_every_event_is_counted_once_and_lines_are_an_interval_apart(gaps: list[float], every: float) -> None:
    throttle = Throttle(every)
    now, counted, lines = 0.0, 0, []
    for gap in gaps:
        now += gap
        count = throttle.event(now)
        if count:
            counted += count
            lines.append(now)
    counted += throttle.flush(now + 2 * every)
    assert counted == len(gaps)
    assert all(later - earlier >= every for earlier, later in itertools.pairwise(lines))
