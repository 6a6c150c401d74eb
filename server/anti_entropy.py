"""Anti-entropy between replicas (sans-io): two nodes compare their digest trees top-down and repair only
the lists that differ, so the cost follows the divergence, not the data size (Dynamo, DeCandia et al.
2007, section 4.7). Time is an input; the shell sends the asks, does the repairs and reports back.

One exchange, initiator A and responder B, for a set of partitions:
  A -> B  DIGEST  nodes=[[partition, level, index, A's hash], ...]       (first: every partition's root)
  B -> A  DIGEST_REPLY  for each node whose hash differs from B's:
            `expanded` + `children`: B's non-empty child hashes (A descends into children that differ), or
            `entries`: B's {list id: digest} under the node, when the node is a leaf bucket or either side
                       is empty there (nothing left to narrow down)
          `more`: nodes B had no room for in this reply (A asks again)
  A repairs each list whose digests differ: PULL (fetch B's copy, merge it here) and/or PUSH (send A's copy
  to B). Partitions A holds but no longer owns are exchanged in PUSH mode only: A hands its data to the
  owners and never takes theirs (see handoff.py).

Exchange states (EXCHANGE_TRANSITIONS is the table):
  COMPARING --replied(more to ask)--> COMPARING
  COMPARING --replied(none left)----> REPAIRING   differing lists known, repairs waiting for budget
  REPAIRING --repaired(all done)----> DONE
  COMPARING/REPAIRING --failed------> FAILED      the peer did not answer; tried again next interval
Repairs are rate limited by a token bucket shared by every exchange, so a burst of divergence (a node
back from a long partition, a join) never starves foreground writes.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from protocol.messages import LIST_ID_PATTERN
from server.merkle import DEPTH, EMPTY, DigestTree, children_of, place_of

MAX_NODES_PER_ASK = 512
MAX_REPLY_BYTES = 40 * 1024
"""Budget of one DIGEST_REPLY header (the protocol caps headers at 64 KiB); estimated, not exact."""
_NODE_BYTES = 14
_ENTRY_OVERHEAD = 12


class Mode(StrEnum):
    """How a partition is exchanged with a peer."""

    TWO_WAY = "two_way"  # both are replicas: each side takes what the other has
    PUSH = "push"  # this node holds data for a partition it does not own: it only gives


class ExchangeState(StrEnum):
    """Where one exchange with one peer stands."""

    COMPARING = "comparing"
    REPAIRING = "repairing"
    DONE = "done"
    FAILED = "failed"


EXCHANGE_TRANSITIONS: dict[tuple[ExchangeState, str], ExchangeState] = {
    (ExchangeState.COMPARING, "replied"): ExchangeState.COMPARING,
    (ExchangeState.COMPARING, "compared"): ExchangeState.REPAIRING,
    (ExchangeState.REPAIRING, "repaired"): ExchangeState.DONE,
    (ExchangeState.COMPARING, "failed"): ExchangeState.FAILED,
    (ExchangeState.REPAIRING, "failed"): ExchangeState.FAILED,
}


def next_state(state: ExchangeState, event: str) -> ExchangeState:
    """Return the state after `event`; pairs missing from the table leave the state unchanged."""
    return EXCHANGE_TRANSITIONS.get((state, event), state)


NodeRef = tuple[int, int, int]
"""(partition, level, index) of one tree node."""


@dataclass(frozen=True)
class AskDigest:
    """Send DIGEST with `nodes` (each [partition, level, index, hash]) to `peer` for exchange `exchange`."""

    peer: str
    exchange: int
    nodes: list[list[int]]


@dataclass(frozen=True)
class Repair:
    """Repair `list_id` with `peer`: `pull` its copy into this node, `push` this node's copy to it."""

    peer: str
    exchange: int
    list_id: str
    pull: bool
    push: bool


Action = AskDigest | Repair


# ----- the responder's side ----------------------------------------------------------------------------


def answer_digest(tree: DigestTree, nodes: object) -> dict[str, Any]:
    """Return the DIGEST_REPLY fields answering `nodes` from `tree`. Raises ValueError (the sender's
    fault) when `nodes` is not a list of [partition, level, index, hash] within range."""
    asked = _parse_nodes(nodes, tree.partitions)
    expanded: list[list[int]] = []
    children: list[list[int]] = []
    entries: list[list[Any]] = []
    more: list[list[int]] = []
    budget = MAX_REPLY_BYTES
    for position, (partition, level, index, theirs) in enumerate(asked):
        mine = tree.hash_at(partition, level, index)
        if mine == theirs:
            continue
        if budget <= 0:
            more = [list(node) for node in asked[position:]]
            break
        under = None
        if level == DEPTH or mine == EMPTY or theirs == EMPTY:
            under = tree.entries_under(partition, level, index)
            cost = sum(len(list_id) + _ENTRY_OVERHEAD for list_id in under)
            if cost > MAX_REPLY_BYTES and level < DEPTH:
                under = None  # too many to list at once: narrow down first
        if under is not None:
            entries.append(
                [partition, level, index, [[list_id, digest] for list_id, digest in under.items()]]
            )
            budget -= _NODE_BYTES + sum(len(list_id) + _ENTRY_OVERHEAD for list_id in under)
            continue
        expanded.append([partition, level, index])
        budget -= _NODE_BYTES
        for child, value in zip(
            children_of(level, index), tree.children(partition, level, index), strict=True
        ):
            if value != EMPTY:
                children.append([partition, level + 1, child, value])
                budget -= _NODE_BYTES
    return {"expanded": expanded, "children": children, "entries": entries, "more": more}


def _parse_nodes(nodes: object, partitions: int) -> list[tuple[int, int, int, int]]:
    parsed = []
    for node in _parse_array(nodes, "`nodes`", MAX_NODES_PER_ASK):
        partition, level, index = _parse_place(node, 4, partitions, _ALL_LEVELS)
        parsed.append((partition, level, index, _parse_hash(node[3], "a tree hash")))
    return parsed


_ALL_LEVELS = range(DEPTH + 1)
_MAX_REPLY_ARRAY = 4096  # the wire codec's limit for any array in a header


def _parse_array(value: object, what: str, limit: int = _MAX_REPLY_ARRAY) -> list[Any]:
    if not isinstance(value, list) or len(value) > limit:
        raise ValueError(f"{what} must be a list of at most {limit} tree nodes")
    return value


def _parse_place(node: object, width: int, partitions: int, levels: range) -> tuple[int, int, int]:
    """Return the [partition, level, index] a tree node of `width` values starts with, checked to be in
    range. Raises ValueError (the sender's fault) otherwise."""
    if not isinstance(node, list) or len(node) != width:
        raise ValueError(f"a tree node is a list of {width} values")
    partition, level, index = node[:3]
    if not all(type(value) is int for value in (partition, level, index)):
        raise ValueError("a tree node's partition, level and index are integers")
    if not (0 <= partition < partitions and level in levels and 0 <= index < 16**level):
        raise ValueError(f"tree node {node[:3]} is out of range")
    return partition, level, index


def _parse_hash(value: object, what: str) -> int:
    if type(value) is not int or not 0 <= value < 2**64:
        raise ValueError(f"{what} is a 64-bit unsigned integer")
    return value


def _parse_listed(listed: object) -> dict[str, int]:
    if not isinstance(listed, list):
        raise ValueError("the lists under a tree node are a list of [list id, digest]")
    parsed: dict[str, int] = {}
    for entry in listed:
        if not isinstance(entry, list) or len(entry) != 2:
            raise ValueError("a listed entry is [list id, digest]")
        list_id, digest = entry
        if not isinstance(list_id, str) or not LIST_ID_PATTERN.fullmatch(list_id):
            raise ValueError("a listed list id must match the list id pattern")
        parsed[list_id] = _parse_hash(digest, "a list digest")
    return parsed


@dataclass(frozen=True)
class DigestReply:
    """The fields of a DIGEST_REPLY, checked: nodes expanded, their children's hashes, the lists under
    nodes listed whole, and the asked nodes left for another round."""

    expanded: list[tuple[int, int, int]]
    children: dict[tuple[int, int, int], int]
    entries: list[tuple[int, int, int, dict[str, int]]]
    more: list[tuple[int, int, int, int]]


def parse_digest_reply(fields: object, partitions: int) -> DigestReply:
    """Return the DIGEST_REPLY `fields` (as `answer_digest` makes them). Raises ValueError (the sender's
    fault) when one is missing, out of range or of the wrong type."""
    if not isinstance(fields, dict) or not all(
        key in fields for key in ("expanded", "children", "entries", "more")
    ):
        raise ValueError("a digest reply has `expanded`, `children`, `entries` and `more`")
    expanded = [
        _parse_place(node, 3, partitions, range(DEPTH))
        for node in _parse_array(fields["expanded"], "`expanded`")
    ]
    children: dict[tuple[int, int, int], int] = {}
    for node in _parse_array(fields["children"], "`children`"):
        place = _parse_place(node, 4, partitions, range(1, DEPTH + 1))
        children[place] = _parse_hash(node[3], "a tree hash")
    entries = []
    for node in _parse_array(fields["entries"], "`entries`"):
        partition, level, index = _parse_place(node, 4, partitions, _ALL_LEVELS)
        entries.append((partition, level, index, _parse_listed(node[3])))
    return DigestReply(expanded, children, entries, _parse_nodes(fields["more"], partitions))


# ----- the initiator's side ----------------------------------------------------------------------------


@dataclass
class Exchange:
    """One comparison with one peer, started by this node."""

    exchange_id: int
    peer: str
    modes: dict[int, Mode]
    started: float
    roots: dict[int, int]
    last_progress: float = 0.0
    state: ExchangeState = ExchangeState.COMPARING
    to_ask: list[list[int]] = field(default_factory=list)
    asking: int = 0
    waiting_repairs: list[Repair] = field(default_factory=list)
    running_repairs: set[str] = field(default_factory=set)
    failed_partitions: set[int] = field(default_factory=set)
    lists_repaired: int = 0
    lists_handed_off: int = 0
    asks: int = 0

    def step(self, event: str) -> ExchangeState:
        """Apply `event` to this exchange's state."""
        self.state = next_state(self.state, event)
        return self.state


@dataclass(frozen=True)
class Finished:
    """What a finished exchange achieved, for status and for handoff."""

    peer: str
    state: ExchangeState
    lists_repaired: int
    lists_handed_off: int
    asks: int
    pushed_partitions: dict[int, int]
    """Partitions exchanged in PUSH mode with every repair acknowledged, with this node's root hash at the
    start (the handoff may drop a partition whose root has not moved since)."""
    synced_partitions: frozenset[int]
    """Partitions exchanged both ways with every repair acknowledged."""
    at: float


@dataclass
class Totals:
    """Counters shown in `status`."""

    exchanges: int = 0
    exchanges_failed: int = 0
    lists_repaired: int = 0
    asks: int = 0
    last_exchange_at: float | None = None
    last_peer: str = ""
    last_repaired: int = 0


class AntiEntropy:
    """Schedules exchanges with each peer every `interval` seconds, at most `max_exchanges` at a time,
    and releases repairs at up to `repairs_per_second` (a token bucket holding `burst` repairs), at most
    `max_running_repairs` at a time (so a burst never queues up on the store's few connections). An
    exchange fails when `exchange_timeout` seconds pass with no answer and no repair finished."""

    def __init__(
        self,
        tree: DigestTree,
        *,
        interval: float = 1.0,
        repairs_per_second: float = 200.0,
        burst: float = 50.0,
        max_exchanges: int = 2,
        exchange_timeout: float = 10.0,
        max_running_repairs: int = 8,
        enabled: bool = True,
    ) -> None:
        self.tree = tree
        self.interval = interval
        self.repairs_per_second = repairs_per_second
        self.burst = burst
        self.max_exchanges = max_exchanges
        self.exchange_timeout = exchange_timeout
        self.max_running_repairs = max_running_repairs
        self.enabled = enabled
        self.totals = Totals()
        self.finished: list[Finished] = []
        self._tokens = burst
        self._refilled_at: float | None = None
        self._ids = itertools.count(1)
        self._exchanges: dict[int, Exchange] = {}
        self._next_due: dict[str, float] = {}

    # ----- events ----------------------------------------------------------------------------------

    def tick(self, now: float, plan: dict[str, dict[int, Mode]]) -> list[Action]:
        """Advance time. `plan` says, per live peer, which partitions to exchange with it and how.
        Returns the asks of newly started exchanges and the repairs the budget allows now."""
        self._refill(now)
        actions: list[Action] = []
        for exchange in list(self._exchanges.values()):
            if now - max(exchange.started, exchange.last_progress) > self.exchange_timeout:
                self._fail(now, exchange)  # no answer and no finished repair for that long
        if self.enabled:
            for peer in sorted(plan, key=lambda name: self._next_due.get(name, 0.0)):
                if len(self._exchanges) >= self.max_exchanges:
                    break
                if not plan[peer] or now < self._next_due.get(peer, 0.0) or self._busy_with(peer):
                    continue
                actions += self._start(now, peer, plan[peer])
        return actions + self._release_repairs()

    def on_reply(self, now: float, exchange_id: int, fields: dict[str, Any]) -> list[Action]:
        """The peer answered a DIGEST ask of exchange `exchange_id`."""
        exchange = self._exchanges.get(exchange_id)
        if exchange is None or exchange.asking <= 0:
            return []  # a late, replayed or unasked-for reply
        exchange.asking -= 1
        exchange.last_progress = now
        try:
            reply = parse_digest_reply(fields, self.tree.partitions)
        except ValueError:
            self._fail(now, exchange)  # the peer's fault: a reply we cannot read
            return []
        self._compare(exchange, reply)
        return self._advance(now, exchange) + self._release_repairs()

    def on_ask_failed(self, now: float, exchange_id: int) -> list[Action]:
        """A DIGEST ask got no answer in time: give the exchange up until the next interval."""
        exchange = self._exchanges.get(exchange_id)
        if exchange is not None:
            self._fail(now, exchange)
        return []

    def on_repaired(
        self, now: float, exchange_id: int, list_id: str, *, ok: bool, changed: int
    ) -> list[Action]:
        """A repair finished; `changed` counts the sides whose copy it changed (0, 1 or 2)."""
        exchange = self._exchanges.get(exchange_id)
        if exchange is None:
            self.totals.lists_repaired += bool(changed)  # finished after its exchange gave up: still done
            return []
        exchange.last_progress = now
        exchange.running_repairs.discard(list_id)
        if not ok:
            exchange.failed_partitions.add(self.tree_partition(list_id))
        if changed:
            exchange.lists_repaired += 1
            if exchange.modes.get(self.tree_partition(list_id)) is Mode.PUSH:
                exchange.lists_handed_off += 1
        return self._advance(now, exchange) + self._release_repairs()

    def tree_partition(self, list_id: str) -> int:
        """Return the partition of `list_id`."""
        return place_of(list_id, self.tree.partitions).partition

    # ----- views -----------------------------------------------------------------------------------

    def active(self) -> int:
        """Return how many exchanges are in flight."""
        return len(self._exchanges)

    def pending_repairs(self) -> int:
        """Return how many repairs wait for budget or an answer."""
        return sum(len(e.waiting_repairs) + len(e.running_repairs) for e in self._exchanges.values())

    def take_finished(self) -> list[Finished]:
        """Return and forget the exchanges finished since the last call."""
        finished, self.finished = self.finished, []
        return finished

    # ----- internals -------------------------------------------------------------------------------

    def _busy_with(self, peer: str) -> bool:
        return any(exchange.peer == peer for exchange in self._exchanges.values())

    def _start(self, now: float, peer: str, modes: dict[int, Mode]) -> list[Action]:
        exchange_id = next(self._ids)
        roots = {partition: self.tree.root(partition) for partition in sorted(modes)}
        exchange = Exchange(exchange_id, peer, dict(modes), now, roots)
        exchange.to_ask = [[partition, 0, 0, root] for partition, root in roots.items()]
        self._exchanges[exchange_id] = exchange
        self._next_due[peer] = now + self.interval
        return self._advance(now, exchange)

    def _compare(self, exchange: Exchange, reply: DigestReply) -> None:
        tree = self.tree
        for partition, level, index in reply.expanded:
            if partition not in exchange.modes:
                continue
            for child in children_of(level, index):
                ref = (partition, level + 1, child)
                mine = tree.hash_at(*ref)
                if reply.children.get(ref, EMPTY) != mine:
                    exchange.to_ask.append([*ref, mine])
        for partition, level, index, theirs in reply.entries:
            if partition not in exchange.modes:
                continue
            held = tree.entries_under(partition, level, index)
            self._plan_repairs(exchange, partition, held, theirs)
        for node in reply.more:
            exchange.to_ask.append(list(node))

    def _plan_repairs(
        self, exchange: Exchange, partition: int, mine: dict[str, int], theirs: dict[str, int]
    ) -> None:
        push_only = exchange.modes[partition] is Mode.PUSH
        for list_id in sorted(set(mine) | set(theirs)):
            if mine.get(list_id) == theirs.get(list_id):
                continue
            pull = list_id in theirs and not push_only
            push = list_id in mine
            if pull or push:
                exchange.waiting_repairs.append(
                    Repair(exchange.peer, exchange.exchange_id, list_id, pull, push)
                )

    def _advance(self, now: float, exchange: Exchange) -> list[Action]:
        actions: list[Action] = []
        while exchange.to_ask and exchange.state is ExchangeState.COMPARING:
            batch, exchange.to_ask = exchange.to_ask[:MAX_NODES_PER_ASK], exchange.to_ask[MAX_NODES_PER_ASK:]
            exchange.asking += 1
            exchange.asks += 1
            actions.append(AskDigest(exchange.peer, exchange.exchange_id, batch))
        if exchange.state is ExchangeState.COMPARING and exchange.asking == 0:
            exchange.step("compared")
        if (
            exchange.state is ExchangeState.REPAIRING
            and not exchange.waiting_repairs
            and not exchange.running_repairs
        ):
            exchange.step("repaired")
            self._finish(now, exchange)
        return actions

    def _release_repairs(self) -> list[Action]:
        released: list[Action] = []
        running = sum(len(exchange.running_repairs) for exchange in self._exchanges.values())
        for exchange in list(self._exchanges.values()):
            while exchange.waiting_repairs and self._tokens >= 1.0 and running < self.max_running_repairs:
                repair = exchange.waiting_repairs.pop(0)
                if repair.list_id in exchange.running_repairs:
                    continue
                self._tokens -= 1.0
                running += 1
                exchange.running_repairs.add(repair.list_id)
                released.append(repair)
        return released

    def _refill(self, now: float) -> None:
        if self._refilled_at is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._refilled_at) * self.repairs_per_second)
        self._refilled_at = now

    def _fail(self, now: float, exchange: Exchange) -> None:
        exchange.step("failed")
        self._finish(now, exchange)

    def _finish(self, now: float, exchange: Exchange) -> None:
        self._exchanges.pop(exchange.exchange_id, None)
        pushed = {
            partition: exchange.roots[partition]
            for partition, mode in exchange.modes.items()
            if mode is Mode.PUSH and partition not in exchange.failed_partitions
        }
        synced = frozenset(
            partition
            for partition, mode in exchange.modes.items()
            if mode is Mode.TWO_WAY and partition not in exchange.failed_partitions
        )
        if exchange.state is not ExchangeState.DONE:
            pushed, synced = {}, frozenset()
            self.totals.exchanges_failed += 1
        self.totals.exchanges += 1
        self.totals.lists_repaired += exchange.lists_repaired
        self.totals.asks += exchange.asks
        self.totals.last_exchange_at = now
        self.totals.last_peer = exchange.peer
        self.totals.last_repaired = exchange.lists_repaired
        self.finished.append(
            Finished(
                exchange.peer,
                exchange.state,
                exchange.lists_repaired,
                exchange.lists_handed_off,
                exchange.asks,
                pushed,
                synced,
                now,
            )
        )
