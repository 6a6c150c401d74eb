"""Per-connection token buckets (sans-io; time is an input), in a table of bounded size."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

DEFAULT_RATE = 200.0
"""Requests per second one connection may send, sustained: a busy sync client sends a few."""
DEFAULT_BURST = 400.0
DEFAULT_MAX_BUCKETS = 10_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per key (a connection): each request takes one token; a bucket holds at most
    `burst` tokens and gains `rate` per second.

    The table keeps at most `max_buckets` buckets and forgets the least recently used one to make room.
    A forgotten bucket comes back full, which is what an idle connection's bucket is anyway; a busy
    connection stays recently used. So a peer can escape its limit only by making `max_buckets` other
    connections in between, each of which is limited too.
    """

    def __init__(
        self, rate: float = DEFAULT_RATE, burst: float = DEFAULT_BURST, max_buckets: int = DEFAULT_MAX_BUCKETS
    ) -> None:
        if rate <= 0 or burst < 1 or max_buckets < 1:
            raise ValueError("a rate limit needs rate > 0, burst >= 1 and room for at least one bucket")
        self.rate = rate
        self.burst = burst
        self.max_buckets = max_buckets
        self.refused = 0
        self._buckets: OrderedDict[Hashable, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def admit(self, key: Hashable, now: float) -> bool:
        """Return whether `key` may send one more request at `now` (taking a token if so)."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_buckets:
                self._buckets.popitem(last=False)
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        else:
            self._buckets.move_to_end(key)
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate)
            bucket.updated = now
        if bucket.tokens < 1:
            self.refused += 1
            return False
        bucket.tokens -= 1
        return True

    def retry_after(self, key: Hashable) -> float:
        """Return how many seconds until `key` has a token again (0 if it has one or is unknown)."""
        bucket = self._buckets.get(key)
        return 0.0 if bucket is None else max(0.0, (1 - bucket.tokens) / self.rate)
