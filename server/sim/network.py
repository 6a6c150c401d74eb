"""The simulated network: per-link latency with jitter, loss, duplication, and partitions that start and
heal on the virtual clock; it counts every message and byte it carries."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from server.sim.events import EventQueue


@dataclass(frozen=True)
class LinkModel:
    """Latency of one message: a per-link base drawn once in [base_low, base_high] seconds, plus an
    exponentially distributed jitter of mean `jitter`; then `loss` and `duplicate` probabilities."""

    base_low: float = 0.0005
    base_high: float = 0.005
    jitter: float = 0.002
    loss: float = 0.0
    duplicate: float = 0.0


@dataclass(frozen=True)
class Partition:
    """From `start` to `heal` (virtual seconds) messages only flow within each of `groups`."""

    start: float
    heal: float
    groups: tuple[frozenset[str], ...]

    def separates(self, source: str, destination: str, now: float) -> bool:
        """Return whether this partition stops a message from `source` to `destination` at `now`."""
        if not self.start <= now < self.heal:
            return False
        return not any(source in group and destination in group for group in self.groups)


@dataclass
class Traffic:
    """Messages and bytes carried, by message kind, plus what the network dropped."""

    messages: Counter[str] = field(default_factory=Counter)
    bytes: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    cut: int = 0
    duplicated: int = 0


class Network:
    """Delivers payloads between named endpoints through an `EventQueue`."""

    def __init__(self, queue: EventQueue, chooser: random.Random, model: LinkModel | None = None) -> None:
        self.queue = queue
        self.random = chooser
        self.model = model or LinkModel()
        self.partitions: list[Partition] = []
        self.traffic = Traffic()
        self._bases: dict[tuple[str, str], float] = {}

    def split(self, start: float, heal: float, groups: Iterable[Iterable[str]]) -> None:
        """Partition the network into `groups` from `start` until `heal`."""
        self.partitions.append(Partition(start, heal, tuple(frozenset(group) for group in groups)))

    def reachable(self, source: str, destination: str) -> bool:
        """Return whether no partition separates the two right now."""
        now = self.queue.now
        return not any(p.separates(source, destination, now) for p in self.partitions)

    def send(self, source: str, destination: str, kind: str, size: int, deliver: Callable[[], None]) -> None:
        """Carry a message of `kind` and `size` bytes; `deliver` runs on arrival unless it is lost."""
        traffic = self.traffic
        traffic.messages[kind] += 1
        traffic.bytes[kind] += size
        if self.partitions and not self.reachable(source, destination):
            traffic.cut += 1
            return
        model = self.model
        if model.loss and self.random.random() < model.loss:
            traffic.lost += 1
            return
        copies = 1
        if model.duplicate and self.random.random() < model.duplicate:
            copies = 2
            traffic.duplicated += 1
        label = f"{kind} {source}>{destination}"
        for _ in range(copies):
            self.queue.after(self._latency(source, destination), label, deliver)

    def _latency(self, source: str, destination: str) -> float:
        link = (source, destination)
        base = self._bases.get(link)
        if base is None:
            base = self._bases[link] = self.random.uniform(self.model.base_low, self.model.base_high)
        if self.model.jitter:
            return base + self.random.expovariate(1 / self.model.jitter)
        return base
