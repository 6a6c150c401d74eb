"""An in-memory cluster of node cores for deterministic tests: a network that can drop, duplicate and
cut, and a store per node, with no sockets and no clock."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from crdt import ShoppingList
from protocol.messages import Kind, Message, reply
from server.membership import Evidence, MemberRecord, Membership
from server.node_core import Config, Effect, NodeCore, Publish, Respond
from server.ring import build_ring


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
