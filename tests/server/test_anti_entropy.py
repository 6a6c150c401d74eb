"""Anti-entropy exchanges between in-memory replicas: convergence, cost in proportion to divergence,
push-only handoff, lost messages, rate limiting and malformed asks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crdt import ShoppingList
from server.anti_entropy import AntiEntropy, AskDigest, Mode, Repair, answer_digest
from server.merkle import DigestTree
from tests.server.fakes import MemoryReplica, run_anti_entropy

PARTITIONS = 16
LISTS = [f"list-{number}" for number in range(40)]
WRITES = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "both"]), st.sampled_from(LISTS), st.sampled_from(["Milk", "Eggs", "Tea"])
    ),
    max_size=40,
)


def _pair() -> tuple[MemoryReplica, MemoryReplica]:
    return MemoryReplica.empty("a", PARTITIONS), MemoryReplica.empty("b", PARTITIONS)


def _apply(a: MemoryReplica, b: MemoryReplica, writes: list[tuple[str, str, str]]) -> None:
    for count, (where, list_id, name) in enumerate(writes):
        delta = ShoppingList(f"client-{count}").add_item(name)
        if where in ("a", "both"):
            a.write(list_id, delta)
        if where in ("b", "both"):
            b.write(list_id, delta)


def _same(a: MemoryReplica, b: MemoryReplica) -> bool:
    return a.lists == b.lists and all(a.tree.root(p) == b.tree.root(p) for p in range(PARTITIONS))


@given(WRITES)
def test_one_two_way_exchange_makes_both_replicas_equal(writes: list[tuple[str, str, str]]) -> None:
    a, b = _pair()
    _apply(a, b, writes)
    cost = run_anti_entropy(a, b)
    assert cost.failed == 0
    assert _same(a, b)
    assert run_anti_entropy(a, b).repaired == 0  # nothing left to do


@given(WRITES, st.integers(2, 7))
def test_lost_messages_fail_an_exchange_and_a_later_one_finishes_the_job(
    writes: list[tuple[str, str, str]], lose_every: int
) -> None:
    a, b = _pair()
    _apply(a, b, writes)
    run_anti_entropy(a, b, lose_every=lose_every)
    for _ in range(30):
        if run_anti_entropy(a, b).failed == 0 and _same(a, b):
            break
    assert _same(a, b)


def test_repairing_one_list_among_thousands_costs_a_few_small_messages() -> None:
    a, b = MemoryReplica.empty("a"), MemoryReplica.empty("b")
    for number in range(3000):
        delta = ShoppingList("seed").add_item(f"item {number}")
        a.write(f"list-{number}", delta)
        b.write(f"list-{number}", delta)
    a.write("list-1234", ShoppingList("late").add_item("Coffee"))
    cost = run_anti_entropy(a, b)
    assert cost.repaired == 1
    assert "Coffee" in b.lists["list-1234"]
    assert cost.rounds <= 5
    assert cost.messages <= 10
    assert cost.bytes < 16 * 1024


def test_an_empty_replica_receives_a_whole_partition_without_descending_the_tree() -> None:
    a, b = _pair()
    for list_id in LISTS:
        b.write(list_id, ShoppingList("x").add_item("Milk"))
    cost = run_anti_entropy(a, b)
    assert a.lists == b.lists
    assert sum(finished.asks for finished in cost.finished) == 1  # the roots' answer lists every entry


def test_push_mode_gives_the_owner_everything_and_takes_nothing() -> None:
    holder, owner = _pair()
    holder.write("groceries", ShoppingList("old-owner").add_item("Milk"))
    owner.write("groceries", ShoppingList("new-owner").add_item("Eggs"))
    owner.write("hardware", ShoppingList("new-owner").add_item("Nails"))
    partitions = {p: Mode.PUSH for p in range(PARTITIONS)}
    run_anti_entropy(holder, owner, partitions)
    assert {"Milk", "Eggs"} <= set(owner.lists["groceries"].items())
    assert "Eggs" not in holder.lists["groceries"]
    assert "hardware" not in holder.lists


def test_a_replica_edited_behind_its_back_is_repaired_once_rescanned() -> None:
    a, b = _pair()
    for list_id in LISTS:
        delta = ShoppingList("x").add_item("Milk")
        a.write(list_id, delta)
        b.write(list_id, delta)
    b.edit_behind_its_back("list-3", None)
    b.edit_behind_its_back("list-4", ShoppingList("restored-backup"))
    assert run_anti_entropy(a, b).repaired == 0  # the tree does not know yet
    b.rescan()
    assert run_anti_entropy(a, b).repaired == 2
    assert a.lists == b.lists


def test_repairs_are_released_no_faster_than_the_budget() -> None:
    tree = DigestTree(PARTITIONS)
    for list_id in LISTS:
        tree.update(list_id, 1)
    engine = AntiEntropy(tree, repairs_per_second=10.0, burst=5.0, max_running_repairs=100)
    asks = engine.tick(0.0, {"b": {p: Mode.TWO_WAY for p in range(PARTITIONS)}})
    actions = []
    for ask in asks:
        assert isinstance(ask, AskDigest)
        actions += engine.on_reply(0.0, ask.exchange, answer_digest(DigestTree(PARTITIONS), ask.nodes))
    assert len([a for a in actions if isinstance(a, Repair)]) == 5
    assert len([a for a in engine.tick(1.0, {}) if isinstance(a, Repair)]) == 5  # burst caps the refill
    assert len([a for a in engine.tick(1.25, {}) if isinstance(a, Repair)]) == 2


def test_an_exchange_that_never_hears_back_times_out() -> None:
    tree = DigestTree(PARTITIONS)
    tree.update("groceries", 1)
    engine = AntiEntropy(tree, exchange_timeout=5.0)
    assert engine.tick(0.0, {"b": {0: Mode.TWO_WAY}})
    assert engine.active() == 1
    engine.tick(6.0, {})
    assert engine.active() == 0 and engine.totals.exchanges_failed == 1


@pytest.mark.parametrize(
    "nodes",
    [
        "roots",
        [[0, 0, 0]],
        [[0, 9, 0, 1]],
        [[PARTITIONS, 0, 0, 1]],
        [[0, 1, 16, 1]],
        [[0, 0, 0, -1]],
        [[0, 0, 0, "x"]],
    ],
)
def test_a_malformed_ask_is_refused_as_the_senders_fault(nodes: object) -> None:
    with pytest.raises(ValueError):
        answer_digest(DigestTree(PARTITIONS), nodes)


def test_at_most_max_running_repairs_run_at_once_and_a_slow_exchange_that_progresses_lives_on() -> None:
    tree = DigestTree(PARTITIONS)
    for list_id in LISTS:
        tree.update(list_id, 1)
    engine = AntiEntropy(tree, max_running_repairs=3, exchange_timeout=5.0)
    asks = engine.tick(0.0, {"b": {p: Mode.TWO_WAY for p in range(PARTITIONS)}})
    repairs = []
    for ask in asks:
        assert isinstance(ask, AskDigest)
        repairs += engine.on_reply(0.0, ask.exchange, answer_digest(DigestTree(PARTITIONS), ask.nodes))
    assert len(repairs) == 3
    now = 0.0
    done = 0
    while repairs:
        now += 4.0  # each repair takes 4 s: slower than the timeout in total, never idle that long
        repair = repairs.pop(0)
        assert isinstance(repair, Repair)
        repairs += [a for a in engine.on_repaired(now, repair.exchange, repair.list_id, ok=True, changed=1)]
        repairs += [a for a in engine.tick(now, {}) if isinstance(a, Repair)]
        done += 1
        assert engine.pending_repairs() - len(repairs) <= len(LISTS)
    assert done == len(LISTS)
    assert engine.totals.exchanges_failed == 0 and engine.totals.lists_repaired == len(LISTS)
