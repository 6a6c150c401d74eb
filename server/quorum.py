"""Quorum accounting for one coordinated request: counts distinct replicas that answered, tolerating
dropped, duplicated and late replies (Dynamo's R and W; DeCandia et al. 2007, section 4.5)."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """Where a quorum stands."""

    PENDING = "pending"
    REACHED = "reached"
    FAILED = "failed"


class Quorum:
    """Needs `required` distinct successes among `candidates`. The first decision (reached or failed)
    is final: replies after it are recorded but never change the outcome."""

    def __init__(self, required: int, candidates: set[str]) -> None:
        if required < 1:
            raise ValueError("a quorum needs at least one reply")
        self.required = required
        self.candidates = set(candidates)
        self.succeeded: set[str] = set()
        self.failed: set[str] = set()
        self.outcome = Outcome.PENDING

    def add_candidate(self, node: str) -> None:
        """Allow `node` to answer too (a stand-in taking a hint for a down replica)."""
        self.candidates.add(node)

    def success(self, node: str) -> Outcome:
        """Record that `node` answered yes; duplicates and unknown nodes count once or not at all."""
        if node in self.candidates and node not in self.failed:
            self.succeeded.add(node)
        return self._decide()

    def failure(self, node: str) -> Outcome:
        """Record that `node` cannot answer (error, timeout, unreachable)."""
        if node in self.candidates and node not in self.succeeded:
            self.failed.add(node)
        return self._decide()

    def _decide(self) -> Outcome:
        if self.outcome is Outcome.PENDING:
            if len(self.succeeded) >= self.required:
                self.outcome = Outcome.REACHED
            elif len(self.candidates - self.failed) < self.required:
                self.outcome = Outcome.FAILED
        return self.outcome

    def settled(self) -> bool:
        """Return whether every candidate has answered one way or the other."""
        return self.candidates <= self.succeeded | self.failed
