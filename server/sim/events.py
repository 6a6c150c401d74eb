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
        self._unhashed: list[str] = []  # trace lines not yet fed to the hash (one update per batch)

    def at(self, when: float, label: str, action: Callable[[], None]) -> None:
        """Run `action` at virtual time `when` (never earlier than now); `label` goes into the trace."""
        self._order += 1
        heapq.heappush(self._heap, (max(when, self.now), self._order, label, action))

    def after(self, delay: float, label: str, action: Callable[[], None]) -> None:
        """Run `action` `delay` virtual seconds from now."""
        self.at(self.now + delay, label, action)

    def run_until(self, until: float) -> None:
        """Run every event due before `until`, then set the clock to `until`."""
        heap, pop, lines = self._heap, heapq.heappop, self._unhashed
        while heap and heap[0][0] < until:
            at, _, label, action = pop(heap)
            self.now = at
            self.processed += 1
            lines.append(f"{at:.9f} {label}\n")
            if len(lines) >= 4096:
                self._hash_lines()
            action()
        self.now = max(self.now, until)

    def _hash_lines(self) -> None:
        """Feed the buffered trace lines to the hash (SHA-256 of a concatenation: batching keeps it)."""
        self._trace.update("".join(self._unhashed).encode())
        self._unhashed.clear()

    def trace_hash(self) -> str:
        """Return the hex SHA-256 of every event run so far (time and label, in order)."""
        self._hash_lines()
        return self._trace.hexdigest()

    def pending(self) -> int:
        """Return how many events wait in the queue."""
        return len(self._heap)
