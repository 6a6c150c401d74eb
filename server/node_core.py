"""The coordinator of a server node (sans-io): quorum writes with sloppy quorum and hinted handoff, quorum
reads with read repair (Dynamo, DeCandia et al. 2007, sections 4.5-4.7). Takes events with the time as
an input and returns effects; the node's own storage is addressed as a peer named by its own id.

Hint delivery rules (HANDOFF_TRANSITIONS is the table):
  IDLE    --start-->  SENDING   the owner is alive again and hints for it are pending
  SENDING --done--->  IDLE      every hint sent was acknowledged and deleted
  SENDING --failed->  IDLE      the owner stopped answering; retried on a later tick
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from crdt import ShoppingList
from crdt.replica import new_replica_id
from protocol.messages import ErrorCode, Kind, Message, error
from server.membership import Evidence, Membership
from server.quorum import Outcome, Quorum
from server.ring import Ring


@dataclass(frozen=True)
class Config:
    """Replication parameters: N replicas, R reads and W writes needed, and the timeouts in seconds."""

    replicas: int = 3
    read_quorum: int = 2
    write_quorum: int = 2
    timeout: float = 2.0
    hint_after: float = 1.0

    def __post_init__(self) -> None:
        if not 1 <= self.read_quorum <= self.replicas or not 1 <= self.write_quorum <= self.replicas:
            raise ValueError("need 1 <= R <= N and 1 <= W <= N")


@dataclass(frozen=True)
class Send:
    """Send a request to a node (possibly this one: its own storage)."""

    node: str
    message: Message


@dataclass(frozen=True)
class Respond:
    """Answer whoever asked (`origin` is the shell's opaque return address)."""

    origin: object
    message: Message


@dataclass(frozen=True)
class Publish:
    """Tell subscribers that `list_id` changed by `body` (a delta)."""

    list_id: str
    body: bytes


Effect = Send | Respond | Publish


@dataclass
class _Ask:
    node: str
    owner: str
    is_hint: bool


@dataclass
class _Write:
    origin: object
    request: Message
    owners: list[str]
    quorum: Quorum
    hint_at: float
    deadline: float
    acked_owners: set[str] = field(default_factory=set)
    covered_owners: set[str] = field(default_factory=set)
    stand_ins: set[str] = field(default_factory=set)
    answered: bool = False


@dataclass
class _Read:
    origin: object
    request: Message
    owners: list[str]
    quorum: Quorum
    deadline: float
    states: dict[str, ShoppingList] = field(default_factory=dict)  # decoded once, merged twice
    answered: bool = False


class NodeCore:
    """Coordinates the requests this node receives from clients and proxies."""

    def __init__(
        self, node_id: str, config: Config, membership: Membership, ring: Callable[[], Ring]
    ) -> None:
        self.node_id = node_id
        self.config = config
        self.membership = membership
        self.ring = ring
        self._counter = itertools.count(1)
        self._asks: dict[str, tuple[str, _Ask]] = {}  # sub-request id -> (operation id, ask)
        self._writes: dict[str, _Write] = {}
        self._reads: dict[str, _Read] = {}

    # ----- events ----------------------------------------------------------------------------------

    def on_write(self, now: float, origin: object, request: Message) -> list[Effect]:
        """A WRITE arrived: store it on the preference list, answering after W durable acks."""
        owners = self.ring().preference_list(request.list_id, self.config.replicas)
        operation = f"w{next(self._counter)}"
        write = _Write(
            origin,
            request,
            owners,
            Quorum(self.config.write_quorum, set(owners)),
            now + self.config.hint_after,
            now + self.config.timeout,
        )
        self._writes[operation] = write
        effects: list[Effect] = []
        for owner in owners:
            if self.membership.is_up(owner):
                effects.append(self._ask(operation, write, owner, owner, is_hint=False))
            else:
                effects += self._hint(operation, write, owner)
                write.quorum.failure(owner)  # it cannot answer; its stand-in may
        return effects + self._settle_write(operation, write)

    def on_read(self, now: float, origin: object, request: Message) -> list[Effect]:
        """A READ arrived: gather R copies from the first N live nodes, merge, answer, repair."""
        ring = self.ring()
        owners = ring.preference_list(request.list_id, self.config.replicas)
        targets = [node for node in ring.successors(request.list_id) if self.membership.is_up(node)]
        targets = targets[: self.config.replicas] or owners
        operation = f"r{next(self._counter)}"
        read = _Read(
            origin, request, owners, Quorum(self.config.read_quorum, set(targets)), now + self.config.timeout
        )
        self._reads[operation] = read
        fetch = [self._ask(operation, read, node, node, is_hint=False) for node in targets]
        return [*fetch, *self._settle_read(operation, read, final=False)]

    def on_reply(self, now: float, node: str, reply: Message) -> list[Effect]:
        """A replica answered one of our sub-requests (late, duplicate and unknown replies are fine)."""
        entry = self._asks.pop(reply.request_id, None)
        if entry is None:
            return []
        self.membership.observe(node, Evidence.REPLY, now)
        return self._answered(*entry, reply)

    def on_unreachable(self, now: float, node: str, request_id: str) -> list[Effect]:
        """A sub-request could not be sent, or its connection dropped: the node is suspect (not alive,
        as a reply would make it) and the sub-request failed."""
        self.membership.observe(node, Evidence.UNREACHABLE, now)
        entry = self._asks.pop(request_id, None)
        if entry is None:
            return []
        return self._answered(*entry, error(request_id, ErrorCode.UNAVAILABLE, f"{node} unreachable"))

    def _answered(self, operation: str, ask: _Ask, reply: Message) -> list[Effect]:
        if operation in self._writes:
            return self._write_answered(operation, ask, ok=reply.kind is Kind.OK)
        if operation in self._reads:
            return self._read_answered(operation, ask, reply)
        return []

    def on_node_lost(self, now: float, node: str) -> list[Effect]:
        """The connection to `node` dropped: its unanswered sub-requests failed (hint around it now)."""
        effects: list[Effect] = []
        for sub_id in [sub for sub, (_, ask) in self._asks.items() if ask.node == node]:
            effects += self.on_unreachable(now, node, sub_id)
        return effects

    def tick(self, now: float) -> list[Effect]:
        """Advance time: hint around slow replicas, fail requests past their deadline.

        A slow owner is hinted around after `hint_after` only while the write still needs it for W; once
        the client has its answer, an owner that is merely slow gets until the deadline (a hint then
        costs a second write on a node that is probably just as loaded, and hints taken early for every
        slow reply turn a busy cluster into an overloaded one)."""
        effects: list[Effect] = []
        for operation, write in list(self._writes.items()):
            if now >= write.deadline:
                if write.answered:
                    effects += self._hint_missing(operation, write)  # owners silent this long may lack it
                effects += self._finish_write(operation, write)
                continue
            if now >= write.hint_at and not write.answered:
                effects += self._hint_missing(operation, write)
            effects += self._settle_write(operation, write)
        for operation, read in list(self._reads.items()):
            if now >= read.deadline:
                effects += self._settle_read(operation, read, final=True)
        return effects

    def pending(self) -> int:
        """Return how many coordinated requests are still in flight."""
        return len(self._writes) + len(self._reads)

    # ----- writes ----------------------------------------------------------------------------------

    def _ask(self, operation: str, op: _Write | _Read, node: str, owner: str, *, is_hint: bool) -> Send:
        sub_id = f"{self.node_id}:{operation}:{next(self._counter)}"
        self._asks[sub_id] = (operation, _Ask(node, owner, is_hint))
        if isinstance(op, _Read):
            return Send(node, Message(Kind.FETCH, sub_id, {"list": op.request.list_id}))
        fields: dict[str, object] = {"list": op.request.list_id}
        if is_hint:
            fields["hint_for"] = owner
        return Send(node, Message(Kind.REPLICATE, sub_id, fields, op.request.body))

    def _hint(self, operation: str, write: _Write, owner: str) -> list[Effect]:
        """Give the write for down `owner` to a stand-in: the next live node past the preference list,
        else a live preference-list node (it keeps the hint apart from its own copy)."""
        if owner in write.covered_owners:
            return []
        write.covered_owners.add(owner)
        successors = self.ring().successors(write.request.list_id)
        beyond = [n for n in successors if n not in write.owners and n not in write.stand_ins]
        within = [n for n in write.owners if n != owner]
        for node in [*beyond, self.node_id, *within]:
            if node != owner and self.membership.is_up(node):
                write.stand_ins.add(node)
                write.quorum.add_candidate(node)
                return [self._ask(operation, write, node, owner, is_hint=True)]
        return []

    def _hint_missing(self, operation: str, write: _Write) -> list[Effect]:
        """Hint around every owner that has neither acknowledged the write nor been covered."""
        effects: list[Effect] = []
        for owner in write.owners:
            if owner not in write.acked_owners and owner not in write.covered_owners:
                effects += self._hint(operation, write, owner)
        return effects

    def _write_answered(self, operation: str, ask: _Ask, *, ok: bool) -> list[Effect]:
        write = self._writes[operation]
        effects: list[Effect] = []
        if ok:
            write.quorum.success(ask.node)
            write.covered_owners.add(ask.owner)
            if not ask.is_hint:
                write.acked_owners.add(ask.owner)
        else:
            if not ask.is_hint:
                effects += self._hint(operation, write, ask.owner)
            else:
                write.covered_owners.discard(ask.owner)
            write.quorum.failure(ask.node)
        return effects + self._settle_write(operation, write)

    def _settle_write(self, operation: str, write: _Write) -> list[Effect]:
        effects: list[Effect] = []
        if not write.answered and write.quorum.outcome is Outcome.REACHED:
            write.answered = True
            effects.append(Respond(write.origin, Message(Kind.OK, write.request.request_id)))
            effects.append(Publish(write.request.list_id, write.request.body))
        elif not write.answered and write.quorum.outcome is Outcome.FAILED:
            return self._finish_write(operation, write)
        everyone_covered = all(owner in write.covered_owners for owner in write.owners)
        if write.answered and everyone_covered and not self._outstanding(operation):
            del self._writes[operation]
        return effects

    def _finish_write(self, operation: str, write: _Write) -> list[Effect]:
        self._writes.pop(operation, None)
        self._forget(operation)
        if write.answered:
            return []
        write.answered = True
        text = f"only {len(write.quorum.succeeded)} of the {write.quorum.required} replicas needed stored it"
        return [Respond(write.origin, error(write.request.request_id, ErrorCode.UNAVAILABLE, text))]

    # ----- reads -----------------------------------------------------------------------------------

    def _read_answered(self, operation: str, ask: _Ask, reply: Message) -> list[Effect]:
        read = self._reads[operation]
        state = _decoded(reply.body) if reply.kind is Kind.STATE else None
        if state is not None:
            read.states[ask.node] = state
            read.quorum.success(ask.node)
        else:
            read.quorum.failure(ask.node)
        return self._settle_read(operation, read, final=read.quorum.settled())

    def _settle_read(self, operation: str, read: _Read, *, final: bool) -> list[Effect]:
        effects: list[Effect] = []
        if not read.answered and read.quorum.outcome is Outcome.REACHED:
            read.answered = True
            merged = _merge_states(read.states.values()).to_bytes()
            effects.append(Respond(read.origin, Message(Kind.STATE, read.request.request_id, {}, merged)))
        elif not read.answered and (read.quorum.outcome is Outcome.FAILED or final):
            read.answered = True
            text = f"only {len(read.quorum.succeeded)} of the {read.quorum.required} replicas needed answered"
            effects.append(Respond(read.origin, error(read.request.request_id, ErrorCode.UNAVAILABLE, text)))
        if final:
            del self._reads[operation]
            self._forget(operation)
            effects += self._repairs(read)
        return effects

    def _repairs(self, read: _Read) -> list[Effect]:
        """Send the merged state to every owner whose copy was stale (read repair)."""
        if len(read.states) < 1:
            return []
        merged = _merge_states(read.states.values())
        body = merged.to_bytes()
        return [
            Send(
                node,
                Message(
                    Kind.REPLICATE,
                    f"{self.node_id}:repair:{next(self._counter)}",
                    {"list": read.request.list_id},
                    body,
                ),
            )
            for node, state in sorted(read.states.items())
            if node in read.owners and state != merged
        ]

    def _outstanding(self, operation: str) -> bool:
        return any(op == operation for op, _ in self._asks.values())

    def _forget(self, operation: str) -> None:
        for sub_id in [sub for sub, (op, _) in self._asks.items() if op == operation]:
            del self._asks[sub_id]


def _decoded(body: bytes) -> ShoppingList | None:
    """Return the list state `body` encodes, or None if it is not one."""
    try:
        return ShoppingList.from_bytes(body, new_replica_id())
    except ValueError:
        return None


def _merge_states(states: Iterable[ShoppingList]) -> ShoppingList:
    """Return the join of `states` (left unchanged: merging never alters its argument)."""
    merged = ShoppingList(new_replica_id())
    for state in states:
        merged.merge(state)
    return merged


class HandoffState(StrEnum):
    """Where delivering the hints held for one owner stands."""

    IDLE = "idle"
    SENDING = "sending"


HANDOFF_TRANSITIONS: dict[tuple[HandoffState, str], HandoffState] = {
    (HandoffState.IDLE, "start"): HandoffState.SENDING,
    (HandoffState.SENDING, "done"): HandoffState.IDLE,
    (HandoffState.SENDING, "failed"): HandoffState.IDLE,
}


class Handoff:
    """Decides when to hand the hints held for each owner back to it."""

    def __init__(self) -> None:
        self.states: dict[str, HandoffState] = {}

    def step(self, owner: str, event: str) -> HandoffState:
        """Apply `event` to `owner`'s delivery; events the table does not allow are ignored."""
        current = self.states.get(owner, HandoffState.IDLE)
        self.states[owner] = HANDOFF_TRANSITIONS.get((current, event), current)
        return self.states[owner]

    def due(self, pending: dict[str, int], membership: Membership) -> list[str]:
        """Return owners whose hints should be delivered now (and mark them SENDING)."""
        ready = [
            owner
            for owner, count in sorted(pending.items())
            if count > 0
            and membership.is_up(owner)
            and self.states.get(owner, HandoffState.IDLE) is HandoffState.IDLE
        ]
        for owner in ready:
            self.step(owner, "start")
        return ready
