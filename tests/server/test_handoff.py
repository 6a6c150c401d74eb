"""Ownership handoff on in-memory replicas: the exchange plan, the partition state machine, and whole joins
and leaves run to the end with nothing lost and nothing left behind."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from crdt import ShoppingList
from server.anti_entropy import Mode
from server.handoff import HandoffTracker, exchange_plan, owned_partitions, partition_owners
from server.ring import Ring, build_ring
from tests.server.fakes import MemoryReplica, run_anti_entropy

PARTITIONS = 32
REPLICAS = 3


@given(
    st.sets(st.sampled_from([f"n{i}" for i in range(1, 8)]), min_size=1),
    st.sets(st.integers(0, PARTITIONS - 1)),
)
def test_the_plan_pairs_co_owners_both_ways_and_pushes_what_a_node_holds_but_does_not_own(
    nodes: set[str], held: set[int]
) -> None:
    ring = build_ring(nodes, PARTITIONS)
    me = sorted(nodes)[0]
    plan = exchange_plan(ring, me, REPLICAS, held, lambda node: True)
    owners = partition_owners(ring, REPLICAS)
    for peer, modes in plan.items():
        assert peer != me
        for partition, mode in modes.items():
            assert peer in owners[partition]
            if mode is Mode.TWO_WAY:
                assert me in owners[partition]
            else:
                assert me not in owners[partition] and partition in held


def test_a_down_peer_is_left_out_of_the_plan() -> None:
    ring = build_ring(["n1", "n2", "n3"], PARTITIONS)
    plan = exchange_plan(ring, "n1", REPLICAS, [], lambda node: node != "n2")
    assert set(plan) == {"n3"}


class Cluster:
    """Replicas, their trackers and one ring; rounds of exchanges as every node's shell would run them."""

    def __init__(self, names: list[str]) -> None:
        self.replicas = {name: MemoryReplica.empty(name, PARTITIONS) for name in names}
        self.trackers = {name: HandoffTracker(name, REPLICAS) for name in names}
        self.ring: Ring = build_ring(names, PARTITIONS)
        self.written: dict[str, set[str]] = {}

    def write(self, list_id: str, item: str) -> None:
        for owner in self.ring.preference_list(list_id, REPLICAS)[:2]:  # W = 2
            self.replicas[owner].write(list_id, ShoppingList(f"c-{item}").add_item(item))
        self.written.setdefault(list_id, set()).add(item)

    def add(self, name: str) -> None:
        self.replicas[name] = MemoryReplica.empty(name, PARTITIONS)
        self.trackers[name] = HandoffTracker(name, REPLICAS)

    def round(self, members: list[str]) -> None:
        for name in sorted(self.replicas):
            replica, tracker = self.replicas[name], self.trackers[name]
            held = replica.tree.held_partitions()
            tracker.update(self.ring, held, replica.tree.root)
            plan = exchange_plan(self.ring, name, REPLICAS, held, lambda node: node in members)
            for peer, modes in sorted(plan.items()):
                cost = run_anti_entropy(replica, self.replicas[peer], modes)
                for finished in cost.finished:
                    tracker.on_finished(self.ring, finished, replica.tree.root)
            for partition in tracker.droppable():
                for list_id in list(replica.tree.lists_in(partition)):
                    replica.drop(list_id)
                tracker.dropped(partition)

    def settled(self) -> bool:
        for list_id, items in self.written.items():
            owners = set(self.ring.preference_list(list_id, REPLICAS))
            for name, replica in self.replicas.items():
                state = replica.lists.get(list_id)
                if name in owners and (state is None or set(state.items()) != items):
                    return False
                if name not in owners and state is not None:
                    return False
        return True


def _load(cluster: Cluster, seed: int, count: int) -> None:
    chooser = random.Random(seed)
    for number in range(count):
        cluster.write(f"list-{chooser.randrange(30)}", f"item-{seed}-{number}")


@settings(max_examples=25)
@given(st.integers(0, 10_000))
def test_a_join_moves_the_new_owners_partitions_to_it_and_old_owners_drop_them(seed: int) -> None:
    cluster = Cluster(["n1", "n2", "n3", "n4"])
    _load(cluster, seed, 60)
    cluster.add("n5")
    cluster.ring = build_ring(["n1", "n2", "n3", "n4", "n5"], PARTITIONS)
    _load(cluster, seed + 1, 20)  # writes keep coming during the handoff
    for _ in range(6):
        cluster.round(sorted(cluster.replicas))
        if cluster.settled():
            break
    assert cluster.settled()
    assert cluster.trackers["n5"].progress.partitions_received == len(
        owned_partitions(cluster.ring, "n5", REPLICAS)
    )


@settings(max_examples=25)
@given(st.integers(0, 10_000))
def test_a_leaving_node_hands_everything_off_and_ends_up_holding_nothing(seed: int) -> None:
    cluster = Cluster(["n1", "n2", "n3", "n4", "n5"])
    _load(cluster, seed, 60)
    cluster.ring = build_ring(["n1", "n2", "n3", "n4"], PARTITIONS)  # n5 leaves: the ring drops it first
    for _ in range(6):
        cluster.round(sorted(cluster.replicas))
        if cluster.settled():
            break
    assert cluster.settled()
    assert len(cluster.replicas["n5"].tree) == 0
    progress = cluster.trackers["n5"].progress
    assert progress.partitions_sent == progress.partitions_to_send > 0


def test_a_write_after_the_owners_confirmed_keeps_the_partition_until_it_is_sent_again() -> None:
    ring = build_ring(["n1", "n2", "n3", "n4"], PARTITIONS)
    holder = MemoryReplica.empty("n1", PARTITIONS)
    tracker = HandoffTracker("n1", REPLICAS)
    foreign = next(p for p in range(PARTITIONS) if "n1" not in partition_owners(ring, REPLICAS)[p])
    list_id = next(f"l{i}" for i in range(10_000) if ring.partition_of(f"l{i}") == foreign)
    holder.write(list_id, ShoppingList("x").add_item("Milk"))
    owners = {
        name: MemoryReplica.empty(name, PARTITIONS) for name in partition_owners(ring, REPLICAS)[foreign]
    }
    tracker.update(ring, holder.tree.held_partitions(), holder.tree.root)
    for owner in owners.values():
        for finished in run_anti_entropy(holder, owner, {foreign: Mode.PUSH}).finished:
            tracker.on_finished(ring, finished, holder.tree.root)
    assert foreign in tracker.droppable()
    holder.write(list_id, ShoppingList("late").add_item("Eggs"))  # a stale coordinator wrote here
    tracker.update(ring, holder.tree.held_partitions(), holder.tree.root)
    assert foreign not in tracker.droppable()


def test_status_describes_handoff_progress_in_words() -> None:
    from server.cli import describe_handoff

    assert describe_handoff({}) == "-"
    joining = {"joining": True, "partitions_received": 3, "partitions_to_receive": 10}
    assert describe_handoff(joining) == "joining, received 3/10 partitions"
    leaving = {"leaving": True, "partitions_sent": 4, "partitions_to_send": 9, "lists_sent": 12}
    assert describe_handoff(leaving) == "leaving, sent 4/9 partitions, 12 lists"
