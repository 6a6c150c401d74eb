"""An in-memory cluster of node cores for deterministic tests: a network that can drop, duplicate and
cut, and a store per node, with no sockets and no clock; and in-memory replicas that run anti-entropy
exchanges through the real codec (also used by bench/antientropy_bench.py)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from crdt import ShoppingList
from protocol.messages import Kind, Message, encode, reply
from server.anti_entropy import (
    Action,
    AntiEntropy,
    AskDigest,
    ExchangeState,
    Finished,
    Mode,
    Repair,
    answer_digest,
)
from server.membership import Evidence, MemberRecord, Membership
from server.merkle import DigestTree, list_digest
from server.node_core import Config, Effect, NodeCore, Publish, Respond
from server.ring import DEFAULT_PARTITIONS, build_ring


@dataclass
class FakeNode:
    """A node core plus what its shell would keep: stored lists and hints."""

    core: NodeCore
    lists: dict[str, ShoppingList] = field(default_factory=dict)
    hints: list[tuple[str, str, bytes]] = field(default_factory=list)

    def serve(self, message: Message) -> Message:
        """Do a replica's part, as the shell does."""
        if message.kind is Kind.FETCH:
            state = self.lists.get(message.list_id, ShoppingList("fake-replica"))
            return reply(message, Kind.STATE, state.to_bytes())
        hint_for = message.fields.get("hint_for")
        if hint_for and hint_for != self.core.node_id:
            self.hints.append((hint_for, message.list_id, message.body))
        else:
            self.lists.setdefault(message.list_id, ShoppingList("fake-replica")).merge(
                ShoppingList.from_bytes(message.body)
            )
        return reply(message, Kind.OK)


class FakeNetwork:
    """Delivers effects between fake nodes; `down` nodes are unreachable, `drop`/`duplicate` are
    probabilities applied to replies."""

    def __init__(self, names: list[str], config: Config | None = None, seed: int = 0) -> None:
        ring = build_ring(names)
        self.random = random.Random(seed)
        self.down: set[str] = set()
        self.silent: set[str] = set()  # they store what they are sent but their replies never arrive
        self.drop = 0.0
        self.duplicate = 0.0
        self.now = 0.0
        self.answers: list[Message] = []
        self.published: list[str] = []
        table = {name: MemberRecord(name, f"tcp://{name}", f"tcp://{name}/pub", 1) for name in names}
        self.nodes: dict[str, FakeNode] = {}
        for name in names:
            membership = Membership(table[name], 0.0)
            membership.on_gossip(0.0, table)
            self.nodes[name] = FakeNode(NodeCore(name, config or Config(), membership, lambda: ring))
        self.queue: list[tuple[str, Effect]] = []

    def kill(self, name: str) -> None:
        """Cut `name` off and let every other node learn it is gone."""
        self.down.add(name)
        for node in self.nodes.values():
            if node.core.node_id != name:
                node.core.membership.observe(name, Evidence.UNREACHABLE, self.now)

    def revive(self, name: str) -> None:
        """Bring `name` back and let everyone see a heartbeat from it."""
        self.down.discard(name)
        for node in self.nodes.values():
            node.core.membership.observe(name, Evidence.HEARTBEAT, self.now)

    def request(self, coordinator: str, message: Message) -> None:
        """A client request arrives at `coordinator`."""
        core = self.nodes[coordinator].core
        handler = core.on_write if message.kind is Kind.WRITE else core.on_read
        self.queue += [(coordinator, effect) for effect in handler(self.now, "client", message)]

    def run(self, max_steps: int = 10_000) -> None:
        """Deliver effects (in random order) until none are left."""
        for _ in range(max_steps):
            if not self.queue:
                return
            sender, effect = self.queue.pop(self.random.randrange(len(self.queue)))
            self._deliver(sender, effect)
        raise AssertionError("the fake cluster never went quiet")

    def advance(self, seconds: float) -> None:
        """Let time pass and deliver what the ticks produce."""
        self.now += seconds
        for name, node in self.nodes.items():
            if name not in self.down:
                self.queue += [(name, effect) for effect in node.core.tick(self.now)]
        self.run()

    def _deliver(self, sender: str, effect: Effect) -> None:
        core = self.nodes[sender].core
        if isinstance(effect, Respond):
            self.answers.append(effect.message)
        elif isinstance(effect, Publish):
            self.published.append(effect.list_id)
        elif effect.node in self.down:
            self.queue += [
                (sender, e) for e in core.on_unreachable(self.now, effect.node, effect.message.request_id)
            ]
        else:
            answer = self.nodes[effect.node].serve(effect.message)
            if effect.node in self.silent or self.random.random() < self.drop:
                return
            copies = 2 if self.random.random() < self.duplicate else 1
            for _ in range(copies):
                self.queue += [(sender, e) for e in core.on_reply(self.now, effect.node, answer)]


@dataclass
class MemoryReplica:
    """One node's lists and digest tree in memory, as the storage shell keeps them, for anti-entropy."""

    name: str
    tree: DigestTree
    lists: dict[str, ShoppingList] = field(default_factory=dict)

    @classmethod
    def empty(cls, name: str, partitions: int = DEFAULT_PARTITIONS) -> MemoryReplica:
        """Return a replica holding no lists."""
        return cls(name, DigestTree(partitions))

    def write(self, list_id: str, delta: ShoppingList) -> None:
        """Merge `delta` into `list_id` and update the tree (what a storage commit reports)."""
        current = self.lists.setdefault(list_id, ShoppingList(f"{self.name}-store"))
        current.merge(delta)
        self.tree.update(list_id, digest_of(current))

    def edit_behind_its_back(self, list_id: str, state: ShoppingList | None) -> None:
        """Replace or delete a list without telling the tree (then `rescan` as the scrub would)."""
        if state is None:
            self.lists.pop(list_id, None)
        else:
            self.lists[list_id] = state

    def drop(self, list_id: str) -> None:
        """Delete this replica's copy of `list_id` (after a handoff)."""
        self.lists.pop(list_id, None)
        self.tree.update(list_id, None)

    def rescan(self) -> None:
        """Rebuild the tree entries from the lists, as the scrub does from disk."""
        for list_id in set(self.tree.list_ids()) | set(self.lists):
            state = self.lists.get(list_id)
            self.tree.update(list_id, digest_of(state) if state is not None else None)


def digest_of(state: ShoppingList) -> int:
    """Return the digest storage keeps for `state`."""
    records = [state.item_bytes(key) for key in sorted(state.item_keys())]
    return list_digest(state.header_bytes(), [record for record in records if record is not None])


@dataclass
class ExchangeCost:
    """What one anti-entropy run between two replicas sent over the wire (encoded with the real codec)."""

    messages: int = 0
    bytes: int = 0
    rounds: int = 0
    repaired: int = 0
    failed: int = 0
    finished: list[Finished] = field(default_factory=list)


def run_anti_entropy(
    initiator: MemoryReplica,
    responder: MemoryReplica,
    modes: dict[int, Mode] | None = None,
    *,
    now: float = 0.0,
    lose_every: int = 0,
) -> ExchangeCost:
    """Run one exchange from `initiator` with `responder` to the end and return its cost. With
    `lose_every` = k, every k-th message is lost (its sender sees a failure)."""
    engine = AntiEntropy(initiator.tree, repairs_per_second=1e9, burst=1e9)
    if modes is None:
        held = set(initiator.tree.held_partitions()) | set(responder.tree.held_partitions())
        modes = {partition: Mode.TWO_WAY for partition in held or {0}}
    cost = ExchangeCost()
    actions: list[Action] = engine.tick(now, {responder.name: modes})
    sent = 0

    def lost() -> bool:
        nonlocal sent
        sent += 1
        return bool(lose_every) and sent % lose_every == 0

    while actions:
        cost.rounds += 1
        following: list[Action] = []
        for action in actions:
            if isinstance(action, AskDigest):
                ask = Message(Kind.DIGEST, "d", {"nodes": action.nodes})
                cost.messages += 1
                cost.bytes += _wire_size(ask)
                if lost():
                    following += engine.on_ask_failed(now, action.exchange)
                    continue
                answer = Message(Kind.DIGEST_REPLY, "d", answer_digest(responder.tree, action.nodes))
                cost.messages += 1
                cost.bytes += _wire_size(answer)
                following += engine.on_reply(now, action.exchange, answer.fields)
            else:
                changed = _repair(initiator, responder, action, cost)
                ok = not lost()
                following += engine.on_repaired(now, action.exchange, action.list_id, ok=ok, changed=changed)
        actions = following
    finished = engine.take_finished()
    cost.finished = finished
    cost.repaired = sum(item.lists_repaired for item in finished)
    cost.failed = sum(1 for item in finished if item.state is not ExchangeState.DONE)
    return cost


def _repair(initiator: MemoryReplica, responder: MemoryReplica, repair: Repair, cost: ExchangeCost) -> int:
    changed = 0
    if repair.pull:
        theirs = responder.lists.get(repair.list_id, ShoppingList("empty"))
        fetch = Message(Kind.FETCH, "f", {"list": repair.list_id})
        state = Message(Kind.STATE, "f", {}, theirs.to_bytes())
        cost.messages += 2
        cost.bytes += _wire_size(fetch) + _wire_size(state)
        before = initiator.tree.digest(repair.list_id)
        initiator.write(repair.list_id, ShoppingList.from_bytes(state.body))
        changed += initiator.tree.digest(repair.list_id) != before
    if repair.push:
        mine = initiator.lists.get(repair.list_id, ShoppingList("empty"))
        push = Message(Kind.REPLICATE, "a", {"list": repair.list_id}, mine.to_bytes())
        cost.messages += 2
        cost.bytes += _wire_size(push) + _wire_size(Message(Kind.OK, "a"))
        before = responder.tree.digest(repair.list_id)
        responder.write(repair.list_id, ShoppingList.from_bytes(push.body))
        changed += responder.tree.digest(repair.list_id) != before
    return changed


def _wire_size(message: Message) -> int:
    return sum(len(frame) for frame in encode(message))
