"""A cap on the request work a node holds in flight: past it, a request is refused at once."""

from __future__ import annotations


class Budget:
    """Counts units of work in flight against a limit. `admit` takes a slot if one is free; every
    admitted unit must be given back with `release` once it is done (answered or failed)."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"a budget needs a limit of at least 1, not {limit}")
        self.limit = limit
        self.in_flight = 0
        self.refused = 0

    def admit(self) -> bool:
        """Take a slot and return True, or count a refusal and return False when all are taken."""
        if self.in_flight >= self.limit:
            self.refused += 1
            return False
        self.in_flight += 1
        return True

    def release(self) -> None:
        """Give back a slot taken by `admit`. Raises ValueError when none is taken (a bug)."""
        if self.in_flight == 0:
            raise ValueError("released a slot that was never admitted")
        self.in_flight -= 1

    def status(self) -> dict[str, int]:
        """Return the limit, the slots taken and the refusals so far."""
        return {"limit": self.limit, "in_flight": self.in_flight, "refused": self.refused}
