"""Scenario (f)'s replicas: nodes that run the real digest trees (merkle.py), anti-entropy engine and
exchange plan (anti_entropy.py, handoff.py) over the simulated network, holding many lists cheaply: a
list every replica got unchanged is a digest only, and a ShoppingList is built the first time one moves."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crdt import ShoppingList
from protocol.messages import Kind, Message, encode
from server.anti_entropy import Action, AntiEntropy, AskDigest, Mode, Repair, answer_digest
from server.handoff import exchange_plan, partition_owners
from server.merkle import DigestTree, list_digest, part_hash, place_of
from server.ring import Ring
from server.sim.events import EventQueue
from server.sim.network import LinkModel, Network

MAINTENANCE_EVERY = 0.05  # node_service.MAINTENANCE_EVERY
EXCHANGE_EVERY = 1.0  # NodeSettings.exchange_every
REPAIRS_PER_SECOND = 500.0  # NodeSettings.repairs_per_second
STORE_LATENCY = 0.001


def base_state(list_id: str) -> ShoppingList:
    """Return the state every replica of `list_id` was loaded with (three items)."""
    state = ShoppingList(f"seed-{list_id}")
    for item in ("Milk", "Bread", "Eggs"):
        state.add_item(item, 2)
    return state


def base_digest(list_id: str) -> int:
    """Return the digest standing for base_state(list_id) in every tree (computing the real one for a
    million lists would dominate the run; a list's real digest replaces it once a repair touches it)."""
    return part_hash(b"base\x00" + list_id.encode())


def digest_of(state: ShoppingList) -> int:
    """Return the digest the storage shell keeps for `state` (header plus item records)."""
    records = [state.item_bytes(key) for key in sorted(state.item_keys())]
    return list_digest(state.header_bytes(), [record for record in records if record is not None])


def wire_bytes(message: Message) -> int:
    """Return the bytes `message` takes in its frames (the real codec)."""
    return sum(len(frame) for frame in encode(message))


class ReplicaNode:
    """One node's lists, digest tree and anti-entropy engine; the world carries its messages."""

    def __init__(self, world: RepairWorld, name: str) -> None:
        self.world = world
        self.name = name
        self.tree = DigestTree(world.ring.partitions)
        self.states: dict[str, ShoppingList] = {}  # lists whose copy moved off base_state
        self.engine = AntiEntropy(
            self.tree,
            interval=EXCHANGE_EVERY,
            repairs_per_second=REPAIRS_PER_SECOND,
            burst=max(10.0, REPAIRS_PER_SECOND / 5),
        )
        self._plan: dict[str, dict[int, Mode]] | None = None
        self._ids = 0

    def state(self, list_id: str) -> ShoppingList:
        """Return a copy of this node's state of `list_id` (empty if it holds none)."""
        held = self.states.get(list_id)
        if held is not None:
            return held.copy()
        if self.tree.digest(list_id) is not None:
            return base_state(list_id)
        return ShoppingList(f"{self.name}-store")

    def merge(self, list_id: str, incoming: ShoppingList) -> bool:
        """Merge `incoming` into this node's copy, as the storage shell commits it; return whether it
        changed the copy."""
        current = self.state(list_id)
        current.merge(incoming)
        digest = digest_of(current)
        before = self.tree.digest(list_id)
        if before is not None and list_id not in self.states and current == base_state(list_id):
            return False  # still the loaded state: keep its stand-in digest
        if digest == before:
            return False
        self.states[list_id] = current
        self.tree.update(list_id, digest)
        return True

    # ----- the maintenance loop (node_service._maintain) -------------------------------------------

    def maintain(self) -> None:
        """Tick the engine with the exchange plan and carry out its actions."""
        now = self.world.queue.now
        if self._plan is None:  # the ring and liveness never change in (f): the plan is computed once
            held = self.tree.held_partitions()
            self._plan = exchange_plan(self.world.ring, self.name, self.world.replicas, held, _always_up)
        self.run(self.engine.tick(now, self._plan))
        self.engine.take_finished()
        self.world.queue.after(MAINTENANCE_EVERY, f"maintain {self.name}", self.maintain)

    def run(self, actions: list[Action]) -> None:
        """Carry out the engine's asks and repairs."""
        for action in actions:
            if isinstance(action, AskDigest):
                self._ask(action)
            else:
                self._repair(action)

    def _ask(self, ask: AskDigest) -> None:
        message = Message(Kind.DIGEST, self._next_id("d"), {"nodes": ask.nodes})

        def answered(answer: Message) -> None:
            self.run(self.engine.on_reply(self.world.queue.now, ask.exchange, answer.fields))

        self.world.request(self.name, ask.peer, message, answered)

    def _repair(self, repair: Repair) -> None:
        list_id = repair.list_id
        changed = 0

        def finish(ok: bool) -> None:
            now = self.world.queue.now
            self.run(self.engine.on_repaired(now, repair.exchange, list_id, ok=ok, changed=changed))

        def push() -> None:
            if not repair.push:
                finish(True)
                return
            body = self.state(list_id).to_bytes()
            message = Message(Kind.REPLICATE, self._next_id("a"), {"list": list_id}, body)

            def acknowledged(answer: Message) -> None:
                nonlocal changed
                changed += answer.kind is Kind.OK
                finish(answer.kind is Kind.OK)

            self.world.request(self.name, repair.peer, message, acknowledged)

        def pulled(answer: Message) -> None:
            nonlocal changed
            merged = self.merge(list_id, ShoppingList.from_bytes(answer.body, f"{self.name}-store"))
            changed += merged
            self.world.queue.after(STORE_LATENCY, f"store {self.name}", push)

        if repair.pull:
            fetch = Message(Kind.FETCH, self._next_id("f"), {"list": list_id})
            self.world.request(self.name, repair.peer, fetch, pulled)
        else:
            push()

    def _next_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}{self._ids}"

    # ----- the replica's side (node_service._replica) ----------------------------------------------

    def serve(self, message: Message) -> Message:
        """Answer a DIGEST, FETCH or REPLICATE from a peer."""
        if message.kind is Kind.DIGEST:
            fields = answer_digest(self.tree, message.fields.get("nodes"))
            return Message(Kind.DIGEST_REPLY, message.request_id, fields)
        list_id = str(message.fields["list"])
        if message.kind is Kind.FETCH:
            return Message(Kind.STATE, message.request_id, {}, self.state(list_id).to_bytes())
        self.merge(list_id, ShoppingList.from_bytes(message.body, f"{self.name}-store"))
        return Message(Kind.OK, message.request_id, {})


def _always_up(_: str) -> bool:
    return True


class RepairWorld:
    """The nodes of scenario (f) on one event queue and one network."""

    def __init__(self, ring: Ring, replicas: int, seed: int, link: LinkModel | None = None) -> None:
        self.ring = ring
        self.replicas = replicas
        self.queue = EventQueue()
        self.network = Network(self.queue, random.Random(f"{seed}:network"), link or LinkModel())
        self.nodes = {name: ReplicaNode(self, name) for name in ring.nodes()}

    def request(
        self, source: str, destination: str, message: Message, answered: Callable[[Message], None]
    ) -> None:
        """Carry `message` to `destination`, let it answer after a store access, and carry the answer
        back to `answered` (a lost message leaves the engine's timeout to notice)."""
        target = self.nodes[destination]

        def arrive() -> None:
            self.queue.after(STORE_LATENCY, f"serve {destination}", respond)

        def respond() -> None:
            answer = target.serve(message)
            self.network.send(
                destination, source, answer.kind.value, wire_bytes(answer), lambda: answered(answer)
            )

        self.network.send(source, destination, message.kind.value, wire_bytes(message), arrive)

    def load(self, lists: int) -> list[str]:
        """Give every owner of each of `lists` lists its base copy; return the list ids."""
        owners_of = partition_owners(self.ring, self.replicas)
        partitions = self.ring.partitions
        list_ids = [f"list-{number:07d}" for number in range(lists)]
        for list_id in list_ids:
            digest = base_digest(list_id)
            for owner in owners_of[place_of(list_id, partitions).partition]:
                self.nodes[owner].tree.update(list_id, digest)
        return list_ids

    def diverge(self, list_ids: list[str], chooser: random.Random) -> None:
        """Give one owner of each of `list_ids` a write the other owners missed."""
        owners_of = partition_owners(self.ring, self.replicas)
        for list_id in list_ids:
            owners = owners_of[place_of(list_id, self.ring.partitions).partition]
            node = self.nodes[chooser.choice(owners)]
            late = node.state(list_id)
            late.merge(ShoppingList(f"late-{list_id}").add_item("Coffee"))
            node.merge(list_id, late)

    def start(self) -> None:
        """Begin every node's maintenance loop, spread over one tick."""
        names = sorted(self.nodes)
        for index, name in enumerate(names):
            offset = MAINTENANCE_EVERY * index / len(names)
            self.queue.after(offset, f"maintain {name}", self.nodes[name].maintain)

    def agree(self, list_ids: list[str]) -> bool:
        """Return whether every owner of each of `list_ids` holds the same digest."""
        owners_of = partition_owners(self.ring, self.replicas)
        for list_id in list_ids:
            owners = owners_of[place_of(list_id, self.ring.partitions).partition]
            if len({self.nodes[owner].tree.digest(list_id) for owner in owners}) != 1:
                return False
        return True

    def totals(self) -> dict[str, Any]:
        """Return the engines' counters summed over nodes."""
        engines = [node.engine.totals for node in self.nodes.values()]
        return {
            "exchanges": sum(totals.exchanges for totals in engines),
            "exchanges_failed": sum(totals.exchanges_failed for totals in engines),
            "lists_repaired": sum(totals.lists_repaired for totals in engines),
        }


@dataclass(frozen=True)
class Traffic:
    """Messages and bytes the network carried, in all and for one kind."""

    messages: int
    bytes: int

    @staticmethod
    def of(network: Network, kinds: set[str] | None = None) -> Traffic:
        """Return what `network` carried so far (of `kinds`, or of every kind)."""
        counted = [kind for kind in network.traffic.messages if kinds is None or kind in kinds]
        return Traffic(
            sum(network.traffic.messages[kind] for kind in counted),
            sum(network.traffic.bytes[kind] for kind in counted),
        )
