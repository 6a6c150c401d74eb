"""The simulator's event queue on virtual time, with a hash of every event it ran (the trace)."""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Callable

_Event = tuple[float, int, str, Callable[[], None]]  # (time, scheduling order, label, action)


class EventQueue:
    """Runs actions in virtual-time order (ties in scheduling order) and hashes what it ran."""

    def __init__(self) -> None:
        self.now = 0.0
        self.processed = 0
        self._heap: list[_Event] = []
        self._order = 0
        self._trace = hashlib.sha256()

    def at(self, when: float, label: str, action: Callable[[], None]) -> None:
        """Run `action` at virtual time `when` (never earlier than now); `label` goes into the trace."""
        self._order += 1
        heapq.heappush(self._heap, (max(when, self.now), self._order, label, action))

    def after(self, delay: float, label: str, action: Callable[[], None]) -> None:
        """Run `action` `delay` virtual seconds from now."""
        self.at(self.now + delay, label, action)

    def run_until(self, until: float) -> None:
        """Run every event due before `until`, then set the clock to `until`."""
        heap = self._heap
        trace = self._trace
        while heap and heap[0][0] < until:
            at, _, label, action = heapq.heappop(heap)
            self.now = at
            self.processed += 1
            trace.update(f"{at:.9f} {label}\n".encode())
            action()
        self.now = max(self.now, until)

    def trace_hash(self) -> str:
        """Return the hex SHA-256 of every event run so far (time and label, in order)."""
        return self._trace.hexdigest()

    def pending(self) -> int:
        """Return how many events wait in the queue."""
        return len(self._heap)
