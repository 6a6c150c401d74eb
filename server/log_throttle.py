"""Rate limits a log line repeated once per event: the first is logged, then one count per interval."""

from __future__ import annotations


class Throttle:
    """Decides which events of one kind get a log line. The first event is logged; the ones after it
    are counted, and once `every` seconds have passed since the last line the next event (or `flush`)
    logs how many there were. A flood costs one line per interval, whatever its rate."""

    def __init__(self, every: float) -> None:
        if not every > 0:
            raise ValueError(f"the interval must be positive, not {every}")
        self.every = every
        self._logged_at: float | None = None
        self._held = 0

    def event(self, now: float) -> int:
        """Record one event at `now`; return how many events a line logged now stands for (1 for the
        first, the count since the last line once the interval passed), or 0 to log nothing."""
        self._held += 1
        if self._logged_at is not None and now - self._logged_at < self.every:
            return 0
        return self._take(now)

    def flush(self, now: float) -> int:
        """Return how many events held back wait for a line, once the interval passed (else 0)."""
        if not self._held or (self._logged_at is not None and now - self._logged_at < self.every):
            return 0
        return self._take(now)

    def _take(self, now: float) -> int:
        held, self._held, self._logged_at = self._held, 0, now
        return held
