"""One law harness for every CRDT: each type supplies a spec (how to make an empty replica, which
operations exist, what a user observes); the harness checks the lattice laws and convergence under
random schedules with duplicated, dropped-then-resent and reordered deltas."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from hypothesis import strategies as st

State = TypeVar("State")
Operation = Callable[[Any], Any]
"""Applies one mutation to a replica in place and returns the delta."""


@dataclass(frozen=True)
class CrdtSpec(Generic[State]):
    name: str
    empty: Callable[[str], State]
    operations: st.SearchStrategy[Operation]
    observe: Callable[[State], object]
    merge: Callable[[State, State], None]
    copy: Callable[[State, str], State]
    round_trip: Callable[[State], State] | None = None


REPLICAS = ("alpha", "bravo", "charlie")


@st.composite
def histories(draw: st.DrawFn, spec: CrdtSpec[Any], max_steps: int = 30) -> tuple[list[Any], list[Any]]:
    """Draw a random run of three replicas: each step either edits one replica or delivers an earlier
    delta (any one, so deltas arrive late, out of order, and more than once) or a whole state to
    another. Returns the replicas' final states and every delta produced."""
    replicas = [spec.empty(name) for name in REPLICAS]
    deltas: list[Any] = []
    for _ in range(draw(st.integers(0, max_steps))):
        step = draw(st.sampled_from(("edit", "edit", "deliver", "sync")))
        target = draw(st.integers(0, len(replicas) - 1))
        if step == "edit":
            operation = draw(spec.operations)
            deltas.append(operation(replicas[target]))
        elif step == "deliver" and deltas:
            spec.merge(replicas[target], deltas[draw(st.integers(0, len(deltas) - 1))])
        elif step == "sync":
            source = draw(st.integers(0, len(replicas) - 1))
            spec.merge(replicas[target], spec.copy(replicas[source], REPLICAS[target]))
    return replicas, deltas
